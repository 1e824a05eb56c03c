using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;
using StackExchange.Redis;
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
        await using (var cluster = new LoopbackCluster())
        {
            await cluster.StartRedisAsync();
            await cluster.WarmModuleCacheAsync();

            // 1. Throughput on two silos.
            SiloProcess[] pair = [cluster.StartSilo(), cluster.StartSilo()];
            await cluster.ConnectClientAsync();
            await cluster.WaitForActiveSilosAsync(pair);
            var (sandboxed, plain, spread) = await ThroughputAsync(cluster.Client);
            rows.Add([$"Sandboxed grain calls `Invoke(() => x + 1)` (2 silos, {Grains} grains, {Callers} callers)", $"{sandboxed:N0} /s", $"{plain:N0} /s", "plain grain call `GetStatus()` (does not enter the sandbox), same cluster", "≥ 20,000 /s"]);
            notes.Add($"grains per silo: {spread}");
            Console.Error.WriteLine($"sandboxed {sandboxed:N0} calls/s, plain {plain:N0} calls/s; {spread}");

            // 2. Memory on one fresh silo in a cluster of its own: the others stopped (killed by id: a graceful stop would
            // first snapshot every sandbox, which this run does not need), so it holds nothing but what this row activates.
            await cluster.DisconnectClientAsync();
            cluster.KillSilos(pair);
            cluster.NewClusterId();
            var single = cluster.StartSilo();
            await cluster.ConnectClientAsync();
            await cluster.WaitForActiveSilosAsync([single]);
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

/// <summary>A silo process and its ports.</summary>
/// <param name="Process">The process.</param>
/// <param name="SiloPort">Its silo-to-silo port.</param>
/// <param name="GatewayPort">Its client gateway port.</param>
internal sealed record SiloProcess(ChildProcess Process, int SiloPort, int GatewayPort);

/// <summary>
/// redis-server and silo processes on loopback, and a client in this process; after
/// tests/IsolateGrains.Cluster.Tests/SiloClusterFixture.cs. Every process is stopped by its id in <see cref="DisposeAsync"/>.
/// </summary>
internal sealed class LoopbackCluster : IAsyncDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);
    private readonly List<ChildProcess> _everyProcess = [];
    private readonly List<SiloProcess> _silos = [];
    private readonly StringBuilder _log = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private ChildProcess? _redis;
    private IHost? _clientHost;
    private int _siloNumber;
    private int _redisPort;

    /// <summary>Registers a last resort: if this process is stopped (SIGTERM, Ctrl+C) before <see cref="DisposeAsync"/>, its children are killed by id.</summary>
    public LoopbackCluster()
    {
        AppDomain.CurrentDomain.ProcessExit += KillEverything;
    }

    /// <summary>This run's cluster: unique, so runs never see each other's silos or grains in Redis.</summary>
    public string ClusterId { get; private set; } = "cluster-bench-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>The client, connected to the cluster.</summary>
    public IClusterClient Client => _clientHost?.Services.GetRequiredService<IClusterClient>() ?? throw new InvalidOperationException("The client is not started.");

    /// <summary>What the cluster did and when.</summary>
    public string Log => _log.ToString();

    private static string BinDirectory => AppContext.BaseDirectory;

    /// <summary>Starts redis-server on a free loopback port, persisting nothing, and waits until it answers PING.</summary>
    public async Task StartRedisAsync()
    {
        (_redis, _redisPort) = await LoopbackServices.StartRedisAsync("The cluster mode runs");
        Track(_redis);
        Note($"redis-server ready on 127.0.0.1:{_redisPort} (pid {_redis.Id})");
    }

    /// <summary>Builds the sandbox runtime image into the shared module cache once, before any silo starts.</summary>
    public async Task WarmModuleCacheAsync() => Note(await LoopbackServices.WarmModuleCacheAsync(BinDirectory));

    /// <summary>Starts a silo process on free ports.</summary>
    public SiloProcess StartSilo()
    {
        var ports = LocalPorts.Take(2);
        var name = $"silo-{++_siloNumber}";
        var process = Track(LoopbackServices.StartSilo(name, BinDirectory, SiloEnvironment(ports[0], ports[1])));
        var silo = new SiloProcess(process, ports[0], ports[1]);
        _silos.Add(silo);
        Note($"started {name} (pid {process.Id}, silo port {silo.SiloPort}, gateway port {silo.GatewayPort})");
        return silo;
    }

    /// <summary>Kills silo processes by their ids (SIGKILL).</summary>
    public void KillSilos(IEnumerable<SiloProcess> silos)
    {
        foreach (var silo in silos)
        {
            silo.Process.Kill();
            Note($"killed {silo.Process.Name} (pid {silo.Process.Id})");
        }
    }

    /// <summary>Silos started from now on form a new cluster, which knows nothing of the silos started before.</summary>
    public void NewClusterId() => ClusterId = "cluster-bench-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Connects a client through Redis membership; the silos may still be starting.</summary>
    public async Task ConnectClientAsync()
    {
        if (_clientHost is not null)
        {
            return;
        }
        // An empty host configuration: Orleans 10 reads "Orleans:Clustering" from the host's configuration as its own
        // provider section, so the client is configured in code only.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var connectStarted = Stopwatch.GetTimestamp();
        builder.Services.AddOrleansClient(client =>
        {
            client.UseRedisClustering(options => options.ConfigurationOptions = ConfigurationOptions.Parse($"127.0.0.1:{_redisPort}"));
            client.Configure<ClusterOptions>(options =>
            {
                options.ClusterId = ClusterId;
                options.ServiceId = "isolategrains";
            });
            client.Configure<GatewayOptions>(options => options.GatewayListRefreshPeriod = TimeSpan.FromSeconds(1));
            client.UseConnectionRetryFilter(async (_, cancellationToken) =>
            {
                if (Stopwatch.GetElapsedTime(connectStarted) > ReadyTimeout || _silos.All(s => s.Process.HasExited))
                {
                    return false;
                }
                await Task.Delay(200, cancellationToken);
                return true;
            });
        });
        var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch
        {
            host.Dispose();
            throw;
        }
        _clientHost = host;
        Note("client connected");
    }

    /// <summary>Stops the client.</summary>
    public async Task DisconnectClientAsync()
    {
        if (_clientHost is null)
        {
            return;
        }
        try
        {
            using var expiry = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _clientHost.StopAsync(expiry.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or OrleansException)
        {
            // The silos may be gone already.
        }
        _clientHost.Dispose();
        _clientHost = null;
    }

    /// <summary>Waits until membership lists exactly <paramref name="expected"/> as active; fails early if one of them died.</summary>
    public async Task WaitForActiveSilosAsync(IReadOnlyCollection<SiloProcess> expected)
    {
        var started = Stopwatch.GetTimestamp();
        var management = Client.GetGrain<IManagementGrain>(0);
        var ports = expected.Select(s => s.SiloPort).Order().ToArray();
        int[] active = [];
        while (Stopwatch.GetElapsedTime(started) < ReadyTimeout)
        {
            if (expected.FirstOrDefault(s => s.Process.HasExited) is { } dead)
            {
                throw new InvalidOperationException($"{dead.Process.Name} exited ({dead.Process.ExitCode}):{Environment.NewLine}{dead.Process.Tail()}");
            }
            try
            {
                var hosts = await management.GetHosts(onlyActive: true).WaitAsync(TimeSpan.FromSeconds(5));
                active = [.. hosts.Keys.Select(s => s.Endpoint.Port).Order()];
                if (active.SequenceEqual(ports))
                {
                    Note($"{ports.Length} silo(s) active in membership");
                    return;
                }
            }
            catch (Exception e) when (e is TimeoutException or OrleansException)
            {
                // Membership still settling.
            }
            await Task.Delay(200);
        }
        throw new TimeoutException(
            $"Membership lists silo ports [{string.Join(", ", active)}] as active, expected [{string.Join(", ", ports)}]." +
            string.Concat(expected.Select(s => $"{Environment.NewLine}--- {s.Process.Name}:{Environment.NewLine}{s.Process.Tail(15)}")));
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await DisconnectClientAsync();
        // Silos still running hold this run's sandboxes only: killed by id at once, since a graceful stop would first
        // snapshot every live sandbox into Redis, which is about to go. Then Redis, gracefully.
        foreach (var silo in _silos)
        {
            silo.Process.Kill();
        }
        if (_redis is not null)
        {
            await _redis.StopAsync(TimeSpan.FromSeconds(5));
        }
        AppDomain.CurrentDomain.ProcessExit -= KillEverything;
        foreach (var process in _everyProcess)
        {
            process.Dispose();
        }
        _everyProcess.Clear();
        _silos.Clear();
        _redis = null;
    }

    private Dictionary<string, string> SiloEnvironment(int siloPort, int gatewayPort) => new()
    {
        ["Orleans__ClusterId"] = ClusterId,
        ["Orleans__ServiceId"] = "isolategrains",
        ["Orleans__Clustering"] = "Redis",
        ["Orleans__Redis"] = $"127.0.0.1:{_redisPort}",
        ["Orleans__AdvertisedIP"] = "127.0.0.1",
        ["Orleans__SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture),
        ["Orleans__GatewayPort"] = gatewayPort.ToString(CultureInfo.InvariantCulture),
        ["IsolateGrains__Storage"] = "Redis",
        // Snapshots on deactivation only: the throughput row measures calls, not snapshot writes.
        ["IsolateGrains__SnapshotPolicy"] = "OnDeactivation",
        // The silos' logs are kept only for failure messages; informational lines would cost CPU the rows measure.
        ["Logging__LogLevel__Default"] = "Warning",
    };

    private ChildProcess Track(ChildProcess process)
    {
        lock (_everyProcess)
        {
            _everyProcess.Add(process);
        }
        return process;
    }

    private void KillEverything(object? sender, EventArgs e)
    {
        lock (_everyProcess)
        {
            foreach (var process in _everyProcess)
            {
                process.Kill();
            }
        }
    }

    private void Note(string what)
    {
        _log.AppendLine(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,6:0.0} s] {what}");
        Console.Error.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:0.0} s] {what}");
    }
}
