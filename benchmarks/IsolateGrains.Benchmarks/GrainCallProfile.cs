using System.Diagnostics;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace IsolateGrains.Benchmarks;

/// <summary>
/// <c>--grain-row</c>: only the grain call row, with more iterations and each side's process CPU time per call as well as
/// the wall clock. The in-process cluster runs client and silo in this process, so process CPU per call is what a call
/// costs; unlike the wall clock it does not count time this process waited for a machine other work keeps busy.
/// </summary>
public static class GrainCallProfile
{
    /// <summary>Runs the mode. Options: <c>--calls N</c> per measured round (default 20,000); <c>--no-components</c> (for a profiler).</summary>
    public static int Run(string[] args)
    {
        var at = Array.IndexOf(args, "--calls");
        var calls = at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], System.Globalization.CultureInfo.InvariantCulture) : 20_000;
        var activations = Array.IndexOf(args, "--activations");
        if (activations >= 0 && activations + 1 < args.Length)
        {
            ActivationsAsync(int.Parse(args[activations + 1], System.Globalization.CultureInfo.InvariantCulture)).GetAwaiter().GetResult();
            return 0;
        }
        if (!args.Contains("--no-components"))
        {
            Components();
        }
        RunAsync(calls).GetAwaiter().GetResult();
        return 0;
    }

    private static async Task RunAsync(int calls)
    {
        await using var cluster = await GrainRows.StartSingleSiloAsync();
        var client = cluster.Client;
        var isolate = client.GetGrain<IIsolateGrain>("profile");
        var echo = client.GetGrain<IEchoGrain>("profile");
        var x = 41;
        Func<Task> sandboxed = () => isolate.Invoke(() => x + 1);
        Func<Task> plain = () => echo.Next(x);
        for (var warm = 0; warm < 3; warm++)
        {
            await Round(calls, sandboxed);
            await Round(calls, plain);
        }
        // Alternate the two a few times so that a burst of load elsewhere on the machine hits both alike.
        var results = new List<(double IsolateWall, double IsolateCpu, double EchoWall, double EchoCpu)>();
        for (var round = 0; round < 3; round++)
        {
            var (iw, ic) = await Round(calls, sandboxed);
            var (ew, ec) = await Round(calls, plain);
            results.Add((iw, ic, ew, ec));
            Console.WriteLine($"round {round}: isolate {iw:0.0} µs wall / {ic:0.0} µs CPU; echo {ew:0.0} µs wall / {ec:0.0} µs CPU; ratio wall {iw / ew:0.00}×, CPU {ic / ec:0.00}×");
        }
        var best = results.MinBy(r => r.IsolateCpu / r.EchoCpu);
        var medianCpu = results.Select(r => r.IsolateCpu / r.EchoCpu).Order().ElementAt(results.Count / 2);
        var medianWall = results.Select(r => r.IsolateWall / r.EchoWall).Order().ElementAt(results.Count / 2);
        Console.WriteLine($"median ratio: wall {medianWall:0.00}×, CPU {medianCpu:0.00}× (best CPU {best.IsolateCpu / best.EchoCpu:0.00}×)");
        await BreakdownAsync(calls, isolate, plain, x);
    }

    /// <summary>
    /// Where a sandboxed grain call's time goes beyond the plain call: the same grain without its sandbox (GetStatus),
    /// a pre-encoded request (no encoding on the caller's side), and the time inside the sandbox per call as the
    /// grain saw it (the engine's isolategrains.invocation.duration histogram), against the same call made in a tight loop.
    /// </summary>
    private static async Task BreakdownAsync(int calls, IIsolateGrain isolate, Func<Task> plain, int x)
    {
        var encoded = IsolateGrains.Protocol.GuestRequests.InvokeDelegate((Func<int>)(() => x + 1), new HashSet<ulong>(), out _);
        Func<Task> status = () => isolate.GetStatus();
        Func<Task> execute = () => isolate.Execute(new IsolateRequest(encoded));
        await Round(calls, status);
        await Round(calls, execute);
        double insideMs = 0;
        long insideCount = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "IsolateGrains" && instrument.Name == "isolategrains.invocation.duration")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, milliseconds, _, _) =>
        {
            insideMs += milliseconds;
            insideCount++;
        });
        listener.Start();
        for (var round = 0; round < 2; round++)
        {
            var (plainWall, _) = await Round(calls, plain);
            var (statusWall, _) = await Round(calls, status);
            (insideMs, insideCount) = (0, 0);
            var (executeWall, _) = await Round(calls, execute);
            Console.WriteLine($"breakdown {round}: echo {plainWall:0.0} µs; isolate grain without its sandbox (GetStatus) {statusWall:0.0} µs; " +
                $"pre-encoded Execute {executeWall:0.0} µs, of which inside the sandbox {insideMs * 1000 / Math.Max(1, insideCount):0.0} µs");
        }
    }

    /// <summary>Activates <paramref name="count"/> sandbox grains with one call each (after one that teaches the warm start) and reports time and private memory per grain.</summary>
    private static async Task ActivationsAsync(int count)
    {
        await using var cluster = await GrainRows.StartSingleSiloAsync();
        var client = cluster.Client;
        var x = 41;
        await client.GetGrain<IIsolateGrain>("teacher").Invoke(() => x + 1);
        await Task.Delay(3000); // the warm-start template builds in the background
        var sandboxHost = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<IsolateGrains.Hosting.IsolateSandboxHost>(cluster.Silos[0].ServiceProvider);
        Console.WriteLine($"warm start: {(sandboxHost.Host.WarmStart is { } learner ? $"{learner.Builds} template build(s), template {(learner.Current is null ? "missing" : "ready")}" : "off")}");
        Func<int> lambda = () => x + 1;
        var encoded = IsolateGrains.Protocol.GuestRequests.InvokeDelegate(lambda, new HashSet<ulong>(), out _);
        for (var round = 0; round < 3; round++)
        {
            var before = Measure.PrivateResidentBytes();
            var c0 = Measure.ThreadCpuMicroseconds();
            var runtimes = new List<IsolatedRuntime>();
            for (var i = 0; i < count; i++)
            {
                var runtime = new IsolatedRuntime(sandboxHost.Host);
                runtime.ExecuteAsync(encoded).GetAwaiter().GetResult();
                runtimes.Add(runtime);
            }
            var cpuEach = (Measure.ThreadCpuMicroseconds() - c0) / count / 1000;
            var after = Measure.PrivateResidentBytes();
            Console.WriteLine($"direct runtimes of the silo's host: {cpuEach:0.00} ms CPU each, {Measure.Bytes((after - before) / (double)count)} each; builds {sandboxHost.Host.WarmStart?.Builds}");
            runtimes.ForEach(r => r.Dispose());
            await Task.Delay(500);
        }
        for (var batch = 0; batch < 3; batch++)
        {
            var before = Measure.PrivateResidentBytes();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var started = Stopwatch.GetTimestamp();
            using var inFlight = new SemaphoreSlim(4);
            await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                await inFlight.WaitAsync();
                try
                {
                    await client.GetGrain<IIsolateGrain>($"a{batch}-{i}").Invoke(() => x + 1);
                }
                finally
                {
                    inFlight.Release();
                }
            }));
            var wall = Stopwatch.GetElapsedTime(started).TotalMilliseconds / count;
            var cpuPer = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / count;
            var after = Measure.PrivateResidentBytes();
            Console.WriteLine($"template builds so far: {sandboxHost.Host.WarmStart?.Builds}");
            Console.WriteLine($"batch {batch}: {count} activations, {wall:0.00} ms wall / {cpuPer:0.00} ms CPU each, {Measure.Bytes((after - before) / (double)count)} private memory each");
        }
    }

    /// <summary>What the pieces of a grain call cost on their own, in this thread's CPU time: the sandbox call and the encoding.</summary>
    private static void Components()
    {
        using var host = new IsolatedRuntimeHost(new IsolatedRuntimeHostOptions { Output = _ => { } }).WithBinDirectoryAssemblyLoader();
        using var runtime = new IsolatedRuntime(host);
        var x = 41;
        Func<int> lambda = () => x + 1;
        var none = new HashSet<ulong>();
        var full = IsolateGrains.Protocol.GuestRequests.InvokeDelegate(lambda, none, out var key);
        var keyOnly = IsolateGrains.Protocol.GuestRequests.InvokeDelegate(lambda, new HashSet<ulong> { key }, out _);
        var reply = runtime.ExecuteAsync(full).GetAwaiter().GetResult();
        Report("runtime.Invoke(() => x + 1)", 20_000, () => runtime.Invoke(lambda));
        Report("encode request with descriptor", 200_000, () => IsolateGrains.Protocol.GuestRequests.InvokeDelegate(lambda, none, out _));
        Report($"ExecuteAsync, request with descriptor ({full.Length} B)", 20_000, () => runtime.ExecuteAsync(full).GetAwaiter().GetResult());
        Report($"ExecuteAsync, key-only request ({keyOnly.Length} B)", 20_000, () => runtime.ExecuteAsync(keyOnly).GetAwaiter().GetResult());
        // Inside a silo the sandbox runs between Orleans' own work, on whichever worker thread is free: colder caches.
        var other = new byte[1 << 20];
        Report("1 MiB touched (to subtract from the next row)", 5_000, () => Touch(other));
        Report("ExecuteAsync, key-only request, after touching 1 MiB", 5_000, () =>
        {
            Touch(other);
            runtime.ExecuteAsync(keyOnly).GetAwaiter().GetResult();
        });
        Report("decode reply", 200_000, () => IsolateGrains.Protocol.GuestRequests.Deserialize<int>(IsolateGrains.Protocol.GuestRequests.ReadReply(reply)));
    }

    private static void Touch(byte[] memory)
    {
        for (var i = 0; i < memory.Length; i += 64)
        {
            memory[i]++;
        }
    }

    private static void Report(string what, int iterations, Action action)
    {
        for (var i = 0; i < Math.Min(iterations, 5000); i++)
        {
            action();
        }
        var best = double.MaxValue;
        for (var round = 0; round < 3; round++)
        {
            var started = Measure.ThreadCpuMicroseconds();
            for (var i = 0; i < iterations; i++)
            {
                action();
            }
            best = Math.Min(best, (Measure.ThreadCpuMicroseconds() - started) / iterations);
        }
        Console.WriteLine($"{what}: {best:0.00} µs thread CPU");
    }

    /// <summary>Wall-clock and process-CPU microseconds per call over <paramref name="count"/> sequential calls.</summary>
    private static async Task<(double Wall, double Cpu)> Round(int count, Func<Task> call)
    {
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpuStart = process.TotalProcessorTime;
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            await call();
        }
        var wall = Stopwatch.GetElapsedTime(started).TotalMicroseconds / count;
        process.Refresh();
        var cpu = (process.TotalProcessorTime - cpuStart).TotalMicroseconds / count;
        return (wall, cpu);
    }
}
