using System.Diagnostics;
using System.Globalization;
using Orleans.Runtime;
using IsolateGrains.Testing;

namespace IsolateGrains.Benchmarks;

/// <summary>
/// <c>--cluster</c>: a real cluster on loopback (redis-server and silo processes, <c>dotnet IsolateGrains.Silo.dll</c>
/// from this benchmark's bin directory, configured by the environment variables docker-compose.yml uses) and an Orleans
/// client in this process. Two rows, each beside its baseline from the same run: sandboxed grain calls per second
/// against plain grain calls per second on two silos, and live sandboxes per silo within a memory budget against the
/// idle silo's private memory. Every process is stopped by its id before the table is printed.
/// </summary>
public static class ClusterBenchmark
{
    private const int Grains = 100;
    private const int Callers = 64;
    private const long BudgetBytes = 24L * 1024 * 1024 * 1024;
    private static readonly TimeSpan Warmup = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(8);

    // Activating sandboxes is CPU-bound (a new sandbox and its first call, milliseconds each): the memory row stops
    // activating after this long and measures the sandboxes that are live, so the mode stays within a few minutes.
    private static readonly TimeSpan ActivationBudget = TimeSpan.FromSeconds(150);

    // The cluster (tests/Shared/LoopbackCluster.cs) as this mode needs it: silos whose costs are the rows' and nothing else.
    private static readonly LoopbackClusterOptions Options = new()
    {
        ClusterIdPrefix = "cluster-bench-",
        Purpose = "The cluster mode runs",
        SiloEnvironment = new Dictionary<string, string>
        {
            // Snapshots on deactivation only: the throughput row measures calls, not snapshot writes.
            ["IsolateGrains__SnapshotPolicy"] = "OnDeactivation",
            // The silos' logs are kept only for failure messages; informational lines would cost CPU the rows measure.
            ["Logging__LogLevel__Default"] = "Warning",
        },
        // Killed by id at the end: a graceful stop would first snapshot every live sandbox into Redis, which is about to go.
        StopSilosGracefully = false,
        // Progress on stderr, the table alone on stdout.
        Echo = Console.Error,
    };

    /// <summary>Runs the cluster mode. Options: <c>--sandboxes N</c> (default 5,000: the target, really live in one silo) for the memory row.</summary>
    public static int Run(string[] args) => RunAsync(args).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(string[] args)
    {
        var sandboxes = 5000;
        var at = Array.IndexOf(args, "--sandboxes");
        if (at >= 0 && at + 1 < args.Length)
        {
            sandboxes = int.Parse(args[at + 1], CultureInfo.InvariantCulture);
        }

        var total = Stopwatch.StartNew();
        var rows = new List<string[]>();
        var notes = new List<string>();
        await using (var cluster = new LoopbackCluster(Options))
        {
            await cluster.StartRedisAsync();
            await cluster.WarmModuleCacheAsync();

            // 1. Throughput on two silos.
            SiloProcess[] pair = [cluster.StartSilo(), cluster.StartSilo()];
            await cluster.ConnectClientAsync();
            await cluster.WaitForActiveSilosAsync();
            var (isolateLatency, plainLatency) = await LatencyAsync(cluster.Client);
            rows.Add(["Grain `Invoke(() => x + 1)`, one caller, one call at a time (median of rounds)", Measure.Time(isolateLatency), Measure.Time(plainLatency), "plain grain call `GetStatus()` on the same grain", "≤ 1.5× baseline"]);
            Console.Error.WriteLine($"latency: sandboxed {isolateLatency:0.0} µs, plain {plainLatency:0.0} µs ({isolateLatency / plainLatency:0.00}×)");
            var (sandboxed, plain, spread) = await ThroughputAsync(cluster.Client);
            rows.Add([$"Sandboxed grain calls `Invoke(() => x + 1)` (2 silos, {Grains} grains, {Callers} callers)", $"{sandboxed:N0} /s", $"{plain:N0} /s", "plain grain call `GetStatus()` (does not enter the sandbox), same cluster", "≥ 20,000 /s"]);
            notes.Add($"grains per silo: {spread}");
            Console.Error.WriteLine($"sandboxed {sandboxed:N0} calls/s, plain {plain:N0} calls/s; {spread}");

            // 2. Memory on one fresh silo in a cluster of its own: the others stopped (killed by id: a graceful stop would
            // first snapshot every sandbox, which this run does not need), so it holds nothing but what this row activates.
            await cluster.DisconnectClientAsync();
            foreach (var silo in pair)
            {
                cluster.Kill(silo);
            }
            cluster.NewClusterId();
            var single = cluster.StartSilo();
            await cluster.ConnectClientAsync();
            await cluster.WaitForActiveSilosAsync();
            var (idle, perSandbox, live, activation) = await MemoryAsync(cluster.Client, single, sandboxes);
            var capacity = (long)Math.Floor((BudgetBytes - idle) / perSandbox);
            rows.Add([$"Private memory per live sandbox grain after one call ({live:N0}, one silo)", Measure.Bytes(perSandbox), Measure.Bytes(idle), "private memory of the idle silo process", ""]);
            rows.Add(["Live sandboxes per silo within 24 GiB (minus the idle silo)", $"{capacity:N0}", Measure.Bytes(idle), "private memory of the idle silo process", "≥ 5,000 on 24 GB"]);
            notes.Add($"{live:N0} of {sandboxes:N0} grains activated with one call each in {activation.TotalSeconds:0.0} s" +
                (live < sandboxes ? $" (activation stopped at its {ActivationBudget.TotalSeconds:0} s budget)" : ""));
        }

        Console.WriteLine("| Measure | IsolateGrains | Baseline | Baseline is | Target |");
        Console.WriteLine("|---|---:|---:|---|---|");
        foreach (var row in rows)
        {
            Console.WriteLine($"| {string.Join(" | ", row)} |");
        }
        Console.WriteLine();
        foreach (var note in notes)
        {
            Console.WriteLine($"- {note}");
        }
        Console.WriteLine($"- whole run: {total.Elapsed.TotalSeconds:0} s");
        return 0;
    }

    /// <summary>
    /// Per-call wall time of sequential calls from one caller to one grain in another process, sandboxed against plain,
    /// in alternating rounds (so that load elsewhere on the machine hits both alike); the median round of each.
    /// </summary>
    private static async Task<(double Sandboxed, double Plain)> LatencyAsync(IClusterClient client)
    {
        var grain = client.GetGrain<IIsolateGrain>("latency-" + Guid.NewGuid().ToString("N")[..8]);
        var x = 41;
        const int Calls = 2000;
        async Task<double> Round(Func<Task> call)
        {
            var started = Stopwatch.GetTimestamp();
            for (var i = 0; i < Calls; i++)
            {
                await call();
            }
            return Stopwatch.GetElapsedTime(started).TotalMicroseconds / Calls;
        }
        Func<Task> sandboxed = async () =>
        {
            if (await grain.Invoke(() => x + 1) != 42)
            {
                throw new InvalidOperationException("wrong answer");
            }
        };
        Func<Task> plain = () => grain.GetStatus();
        await Round(sandboxed);
        await Round(plain);
        var sandboxedRounds = new List<double>();
        var plainRounds = new List<double>();
        for (var round = 0; round < 5; round++)
        {
            sandboxedRounds.Add(await Round(sandboxed));
            plainRounds.Add(await Round(plain));
        }
        return (sandboxedRounds.Order().ElementAt(2), plainRounds.Order().ElementAt(2));
    }

    /// <summary>Sandboxed and plain calls per second over the same grains, and how the grains spread over the silos.</summary>
    private static async Task<(double Sandboxed, double Plain, string Spread)> ThroughputAsync(IClusterClient client)
    {
        var prefix = "throughput-" + Guid.NewGuid().ToString("N")[..8];
        var grains = Enumerable.Range(0, Grains).Select(i => client.GetGrain<IIsolateGrain>($"{prefix}-{i}")).ToArray();
        var x = 41;

        // Activate every grain (the first call loads the lambda's assembly into each sandbox), then see where they live.
        using (var inFlight = new SemaphoreSlim(16))
        {
            await Task.WhenAll(grains.Select(async grain =>
            {
                await inFlight.WaitAsync();
                try
                {
                    await grain.Invoke(() => x + 1);
                }
                finally
                {
                    inFlight.Release();
                }
            }));
        }
        var silos = await Task.WhenAll(grains.Select(g => g.GetStatus()));
        var spread = string.Join(", ", silos.GroupBy(s => s.Silo).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}: {g.Count()}"));

        Func<IIsolateGrain, Task> sandboxed = async grain =>
        {
            if (await grain.Invoke(() => x + 1) != 42)
            {
                throw new InvalidOperationException("wrong answer");
            }
        };
        Func<IIsolateGrain, Task> plain = grain => grain.GetStatus();

        // Warm both paths (tiered JIT in every process), then measure each for the same time.
        await CallsPerSecondAsync(grains, Warmup, sandboxed);
        await CallsPerSecondAsync(grains, Warmup, plain);
        Console.Error.WriteLine("measuring sandboxed calls...");
        var sandboxedRate = await CallsPerSecondAsync(grains, Duration, sandboxed);
        Console.Error.WriteLine("measuring plain calls...");
        var plainRate = await CallsPerSecondAsync(grains, Duration, plain);
        return (sandboxedRate, plainRate, spread);
    }

    /// <summary><see cref="Callers"/> callers, each calling the grains in turn, for <paramref name="duration"/>; calls per second.</summary>
    private static async Task<double> CallsPerSecondAsync(IIsolateGrain[] grains, TimeSpan duration, Func<IIsolateGrain, Task> call)
    {
        long calls = 0;
        var started = Stopwatch.GetTimestamp();
        var stopAt = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        await Task.WhenAll(Enumerable.Range(0, Callers).Select(async caller =>
        {
            await Task.Yield();
            long mine = 0;
            for (var i = caller; Stopwatch.GetTimestamp() < stopAt; i += Callers)
            {
                await call(grains[i % grains.Length]);
                mine++;
            }
            Interlocked.Add(ref calls, mine);
        }));
        return calls / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>The idle silo's private memory, then the private memory each of <paramref name="count"/> live sandbox grains adds.</summary>
    private static async Task<(long Idle, double PerSandbox, int Live, TimeSpan Activation)> MemoryAsync(IClusterClient client, SiloProcess silo, int count)
    {
        var management = client.GetGrain<IManagementGrain>(0);
        var addresses = (await management.GetHosts(onlyActive: true)).Keys.ToArray();
        var idle = await SettledPrivateBytesAsync(management, addresses, silo);

        var prefix = "memory-" + Guid.NewGuid().ToString("N")[..8];
        var x = 41;
        var done = 0;
        var started = Stopwatch.GetTimestamp();
        using (var inFlight = new SemaphoreSlim(16))
        {
            await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                await inFlight.WaitAsync();
                try
                {
                    if (Stopwatch.GetElapsedTime(started) > ActivationBudget)
                    {
                        return;
                    }
                    if (await client.GetGrain<IIsolateGrain>($"{prefix}-{i}").Invoke(() => x + 1) != 42)
                    {
                        throw new InvalidOperationException("wrong answer");
                    }
                    if (Interlocked.Increment(ref done) % 500 == 0)
                    {
                        Console.Error.WriteLine($"{done:N0} sandboxes live ({Stopwatch.GetElapsedTime(started).TotalSeconds:0} s)");
                    }
                }
                finally
                {
                    inFlight.Release();
                }
            }));
        }
        var activation = Stopwatch.GetElapsedTime(started);
        Console.Error.WriteLine($"{done:N0} sandboxes live after {activation.TotalSeconds:0} s");
        var loaded = await SettledPrivateBytesAsync(management, addresses, silo);
        return (idle, (double)(loaded - idle) / done, done, activation);
    }

    /// <summary>
    /// The silo process's private resident memory (Pss_Anon + Pss_Shmem, as <see cref="Measure.PrivateResidentBytesOf"/> reads
    /// them) after a collection in the silo and a short rest. From smaps_rollup: /proc/PID/status has no Pss lines, so reading
    /// it measured 0 bytes and an unbounded capacity.
    /// </summary>
    private static async Task<long> SettledPrivateBytesAsync(IManagementGrain management, SiloAddress[] silos, SiloProcess silo)
    {
        await management.ForceGarbageCollection(silos);
        await Task.Delay(TimeSpan.FromSeconds(2));
        return Measure.PrivateResidentBytesOf(await File.ReadAllTextAsync($"/proc/{silo.Process.Id}/smaps_rollup"));
    }
}
