using System.Diagnostics;
using IsolateGrains.Engine;
using IsolateGrains.Engine.Boot;
using Wasmtime;

namespace IsolateGrains.Benchmarks;

/// <summary>
/// The quick table: every IsolateGrains figure beside its baseline, measured in this one process
/// (the child-process baseline is started from here). Prints Markdown.
/// </summary>
public static class QuickBenchmark
{
    /// <summary>Runs the quick benchmark. Options: <c>--sandboxes N</c> for the largest memory run (default 1000; 100 is always measured too).</summary>
    public static int Run(string[] args)
    {
        var largest = args.Length >= 2 && args[0] == "--sandboxes" ? int.Parse(args[1]) : 1000;
        var rows = new List<string[]>();
        var options = new IsolatedRuntimeHostOptions { Output = _ => { } };

        // Make sure the image exists, so "warm host start" is what it says.
        var coldStarted = Stopwatch.GetTimestamp();
        using (var first = new IsolatedRuntimeHost(options))
        {
            Console.Error.WriteLine($"first host: {Measure.Time(Stopwatch.GetElapsedTime(coldStarted).TotalMicroseconds)} ({(first.LoadedFromCache ? "from cache" : "built the image")})");
        }

        var hostStart = Measure.Samples(7, () => new IsolatedRuntimeHost(options).Dispose());
        using var host = new IsolatedRuntimeHost(options).WithBinDirectoryAssemblyLoader();

        var x = 41;

        // Memory first, while the process is otherwise quiet.
        var childMemory = ChildPrivateBytes(x);
        var memoryRows = new List<string[]>();
        foreach (var count in new[] { 100, largest }.Distinct())
        {
            var perSandbox = PrivatePerSandbox(host, count);
            memoryRows.Add([$"Private memory per live sandbox after one call ({count:N0})", Measure.Bytes(perSandbox), Measure.Bytes(childMemory), "private memory of the child process", "≤ 2 MB"]);
        }

        // A new sandbox and its first call, against a fresh process running the same lambda. The host knows the
        // lambda (a service prepares its lambdas at start; a host also learns them from its first calls), so this is
        // the steady state; the row after it is a host with warm start off, where every new sandbox starts cold.
        Func<int> lambda = () => x + 1;
        host.PrepareAsync(lambda).GetAwaiter().GetResult();
        void NewSandboxAndFirstCall(IsolatedRuntimeHost of)
        {
            using var runtime = new IsolatedRuntime(of);
            if (runtime.Invoke(lambda) != 42)
            {
                throw new InvalidOperationException("wrong answer");
            }
        }
        var newSandbox = Measure.Samples(200, () => NewSandboxAndFirstCall(host));
        var newSandboxCpu = Measure.CpuSamples(100, () => NewSandboxAndFirstCall(host));
        double[] coldSandbox;
        using (var coldHost = new IsolatedRuntimeHost(new IsolatedRuntimeHostOptions { Output = _ => { }, WarmStart = false }).WithBinDirectoryAssemblyLoader())
        {
            coldSandbox = Measure.Samples(50, () => NewSandboxAndFirstCall(coldHost));
        }
        var childProcess = Measure.Samples(5, () => RunChild(x));
        var fullBoot = BootWithoutImage(host, 5);
        rows.Add(["New sandbox + first call (median)", Measure.WallAndCpu(Measure.Median(newSandbox), Measure.Median(newSandboxCpu)), Measure.Time(Measure.Median(childProcess)), "child `dotnet` process running the same lambda", "≤ 1 ms"]);
        rows.Add(["New sandbox + first call (p90)", Measure.Time(Measure.Percentile(newSandbox, 0.9)), Measure.Time(Measure.Median(fullBoot)), "booting the runtime without the pre-initialized image", ""]);
        rows.Add(["New sandbox + first call, warm start off (median)", Measure.Time(Measure.Median(coldSandbox)), "", "", ""]);

        // A trivial call into a warm sandbox, against calling the lambda directly.
        using (var warm = new IsolatedRuntime(host))
        {
            Func<int> direct = () => x + 1;
            var invoke = Measure.PerOperationWithCpu(20_000, () => warm.Invoke(() => x + 1));
            var directCall = Measure.PerOperation(10_000_000, () => direct());
            rows.Add(["`Invoke(() => x + 1)`", Measure.WallAndCpu(invoke.Wall, invoke.Cpu), Measure.Time(directCall), "calling the lambda directly", "≤ 10 µs"]);
        }

        // Guest → host callback round trips, timed inside one call so the call's own cost is spread thin.
        using (var caller = new IsolatedRuntime(host))
        {
            Func<int, int> echo = value => value + 1;
            caller.RegisterCallback("echo", echo);
            const int Callbacks = 4_000;
            Func<int> callbackLoop = () =>
            {
                var sum = 0;
                for (var i = 0; i < Callbacks; i++)
                {
                    sum += DotNetIsolatorHost.Invoke<int>("echo", i);
                }
                return sum;
            };
            // Warmed up (both sides tier up), then measured per loop of callbacks: the median of seven loops.
            caller.Invoke(callbackLoop);
            var (perLoop, perLoopCpu) = Measure.PerOperationWithCpu(7, () => caller.Invoke(callbackLoop));
            var (perCallback, perCallbackCpu) = (perLoop / Callbacks, perLoopCpu / Callbacks);
            var directEcho = Measure.PerOperation(10_000_000, () => echo(1));
            rows.Add(["Guest → host callback round trip", Measure.WallAndCpu(perCallback, perCallbackCpu), Measure.Time(directEcho), "calling the callback delegate directly", "≤ 5 µs"]);

            using var twice = caller.CreateObject<Doubler>();
            var doubler = new Doubler();
            var objectCall = Measure.PerOperationWithCpu(20_000, () => twice.Invoke<int, int>("Twice", 21));
            var directObjectCall = Measure.PerOperation(10_000_000, () => doubler.Twice(21));
            rows.Add(["`obj.Invoke<int, int>(\"Twice\", 21)`", Measure.WallAndCpu(objectCall.Wall, objectCall.Cpu), Measure.Time(directObjectCall), "calling the method directly", ""]);
        }

        rows.AddRange(GrainRows.MeasureAsync(() => new IsolatedRuntimeHost(options).WithBinDirectoryAssemblyLoader()).GetAwaiter().GetResult());

        rows.Add(["Host start, warm cache (median)", Measure.Time(Measure.Median(hostStart)), "", "", "≤ 50 ms"]);
        rows.AddRange(memoryRows);


        Console.WriteLine($"IsolateGrains quick benchmark — {Environment.ProcessorCount} cores, .NET {Environment.Version}, {DateTime.UtcNow:yyyy-MM-dd}");
        Console.WriteLine();
        Console.WriteLine("| Measure | IsolateGrains | Baseline | Baseline is | Target |");
        Console.WriteLine("|---|---:|---:|---|---|");
        foreach (var row in rows)
        {
            Console.WriteLine($"| {string.Join(" | ", row)} |");
        }
        return 0;
    }

    /// <summary>A trivial object for the isolated-object round trip.</summary>
    public sealed class Doubler
    {
        /// <summary>Doubles.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        public int Twice(int value) => value * 2;
    }

    private static void RunChild(int value)
    {
        using var process = Process.Start(ChildStart(value))!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (!output.StartsWith((value + 1).ToString(), StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"The child process answered '{output}'.");
        }
    }

    private static long ChildPrivateBytes(int value)
    {
        using var process = Process.Start(ChildStart(value))!;
        var output = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        return long.Parse(output.Split(' ')[1]);
    }

    private static ProcessStartInfo ChildStart(int value)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(typeof(QuickBenchmark).Assembly.Location);
        start.ArgumentList.Add("--child");
        start.ArgumentList.Add(value.ToString());
        return start;
    }

    /// <summary>What a sandbox would cost without the image: instantiate the original module and boot Mono in it (compiling excluded).</summary>
    private static double[] BootWithoutImage(IsolatedRuntimeHost host, int count)
    {
        var pack = WasmRuntimePack.Locate();
        using var engine = new SandboxEngine();
        using var module = Module.FromFile(engine.Engine, pack.NativeModulePath);
        var image = new SandboxImage(engine, module, ImageState.Unbooted, host.Image.FileSystem, host.Image.Limits, TimeProvider.System, _ => { }, null);
        return Measure.Samples(count, () =>
        {
            using var sandbox = new Sandbox(image, "boot-baseline", host.HandleHostRequest);
            RuntimeBooter.Boot(sandbox, pack);
        });
    }

    private static double PrivatePerSandbox(IsolatedRuntimeHost host, int count)
    {
        // One sandbox first, so that one-time costs (the image's shared pages, JIT of this code) are not counted.
        using (var warm = new IsolatedRuntime(host))
        {
            warm.Invoke(() => count);
        }
        var before = Measure.PrivateResidentBytes();
        var runtimes = new List<IsolatedRuntime>(count);
        var x = 1;
        for (var i = 0; i < count; i++)
        {
            var runtime = new IsolatedRuntime(host);
            runtime.Invoke(() => x + 1);
            runtimes.Add(runtime);
        }
        var after = Measure.PrivateResidentBytes();
        runtimes.ForEach(r => r.Dispose());
        return (after - before) / (double)count;
    }
}
