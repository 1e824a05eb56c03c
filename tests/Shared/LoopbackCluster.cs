using System.Diagnostics;
using System.Globalization;
using System.Text;
using ClusterDemo;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using Orleans.Runtime;

namespace IsolateGrains.Testing;

/// <summary>
/// A real cluster on loopback, shared by the cluster tests and the cluster benchmark: a redis-server, silo processes
/// (<c>dotnet IsolateGrains.Silo.dll</c> from the caller's bin directory, configured by the environment variables
/// docker/docker-compose.yml gives its silos) and an Orleans client in this process, found through Redis membership.
/// Every process is stopped by its id in <see cref="DisposeAsync"/>, or killed by id if this process exits first.
/// </summary>
public sealed class LoopbackCluster : IAsyncDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);
    private readonly LoopbackClusterOptions _options;
    private readonly List<ChildProcess> _everyProcess = [];
    private readonly List<SiloProcess> _silos = [];
    private readonly StringBuilder _log = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private ChildProcess? _redis;
    private IHost? _clientHost;
    private int _siloNumber;

    /// <summary>Registers a last resort: if this process is stopped (SIGTERM, Ctrl+C) before <see cref="DisposeAsync"/>, its children are killed by id.</summary>
    public LoopbackCluster(LoopbackClusterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        ClusterId = NewClusterIdValue();
        AppDomain.CurrentDomain.ProcessExit += KillEverything;
    }

    /// <summary>This run's cluster: unique, so runs never see each other's silos or grains in Redis.</summary>
    public string ClusterId { get; private set; }

    /// <summary>The loopback port of this run's redis-server (0 before <see cref="StartRedisAsync"/>).</summary>
    public int RedisPort { get; private set; }

    /// <summary>The client, connected to the cluster.</summary>
    public IClusterClient Client => _clientHost?.Services.GetRequiredService<IClusterClient>() ?? throw new InvalidOperationException("The client is not started.");

    /// <summary>The silo processes that are running.</summary>
    public IReadOnlyList<SiloProcess> Silos
    {
        get
        {
            lock (_everyProcess)
            {
                return [.. _silos.Where(s => !s.Process.HasExited)];
            }
        }
    }

    /// <summary>What the cluster did and when (for test output and failure messages).</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    private static string BinDirectory => AppContext.BaseDirectory;

    /// <summary>Starts redis-server on a free loopback port, persisting nothing, and waits until it answers PING.</summary>
    public async Task StartRedisAsync()
    {
        var (redis, port) = await LoopbackServices.StartRedisAsync(_options.Purpose);
        _redis = Track(redis);
        RedisPort = port;
        Note($"redis-server ready on 127.0.0.1:{RedisPort} (pid {redis.Id})");
    }

    /// <summary>
    /// Builds the sandbox runtime image into the module cache once, before any silo starts: otherwise every silo
    /// would build it at the same time (~10 s of CPU each).
    /// </summary>
    public async Task WarmModuleCacheAsync() => Note(await LoopbackServices.WarmModuleCacheAsync(BinDirectory));

    /// <summary>Starts a silo process on free ports, in the current <see cref="ClusterId"/>.</summary>
    public SiloProcess StartSilo()
    {
        var ports = LocalPorts.Take(2);
        var name = $"silo-{++_siloNumber}";
        var process = Track(LoopbackServices.StartSilo(name, BinDirectory, SiloEnvironment(ports[0], ports[1])));
        var silo = new SiloProcess(process, ports[0], ports[1]);
        lock (_everyProcess)
        {
            _silos.Add(silo);
        }
        Note($"started {name} (pid {process.Id}, silo port {silo.SiloPort}, gateway port {silo.GatewayPort})");
        return silo;
    }

    /// <summary>Kills a silo process by its id at once (SIGKILL), as when its machine dies.</summary>
    public void Kill(SiloProcess silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        silo.Process.Kill();
        Note($"killed {silo.Process.Name} (pid {silo.Process.Id}, silo port {silo.SiloPort})");
    }

    /// <summary>Stops every running silo gracefully (SIGTERM, all at once); returns how long it took.</summary>
    /// <param name="grace">How long each may take before it is killed.</param>
    public async Task<TimeSpan> StopSilosAsync(TimeSpan grace)
    {
        var started = Stopwatch.GetTimestamp();
        var silos = Silos;
        var graceful = await Task.WhenAll(silos.Select(s => s.Process.StopAsync(grace)));
        var elapsed = Stopwatch.GetElapsedTime(started);
        Note($"stopped {silos.Count} silos in {elapsed.TotalSeconds:0.0} s ({graceful.Count(g => g)} gracefully, {graceful.Count(g => !g)} killed after {grace.TotalSeconds:0} s)");
        return elapsed;
    }

    /// <summary>Silos started from now on form a new cluster, which knows nothing of the silos started before.</summary>
    public void NewClusterId() => ClusterId = NewClusterIdValue();

    /// <summary>The silo hosting an activation, from a silo address such as "S127.0.0.1:port:generation".</summary>
    public SiloProcess? SiloOf(string siloAddress)
    {
        ArgumentNullException.ThrowIfNull(siloAddress);
        lock (_everyProcess)
        {
            return _silos.FirstOrDefault(s => siloAddress.Contains($":{s.SiloPort}:", StringComparison.Ordinal));
        }
    }

    /// <summary>
    /// Connects a client (if none is) through Redis membership, configured by the demo's
    /// <see cref="ClientConfiguration"/> from the same keys the silos read; the silos may still be starting.
    /// </summary>
    public async Task ConnectClientAsync()
    {
        if (_clientHost is not null)
        {
            return;
        }
        var settings = new Dictionary<string, string?>
        {
            ["Orleans:ClusterId"] = ClusterId,
            ["Orleans:ServiceId"] = "isolategrains",
            ["Orleans:Clustering"] = "Redis",
            ["Orleans:Redis"] = $"127.0.0.1:{RedisPort}",
            // Silos that start later (a restart, a fresh cluster) are used within a second.
            ["Orleans:GatewayListRefreshPeriod"] = "00:00:01",
        };
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        // An empty host (no default sources, no console logging): Orleans 10 would read "Orleans:Clustering" from the
        // host's own configuration as its provider section, and the client should log nothing into the output.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var connectStarted = Stopwatch.GetTimestamp();
        builder.Services.AddOrleansClient(client =>
        {
            ClientConfiguration.Configure(client, configuration);
            // The silos may not have written themselves into the membership table yet.
            client.UseConnectionRetryFilter(async (_, cancellationToken) =>
            {
                if (Stopwatch.GetElapsedTime(connectStarted) > ReadyTimeout || Silos.Count == 0)
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

    /// <summary>Stops the client (if one is connected).</summary>
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
            // The silos may be gone already; the processes are stopped by id either way.
        }
        _clientHost.Dispose();
        _clientHost = null;
    }

    /// <summary>
    /// Waits until membership lists exactly the running silos as active (a killed one declared dead); fails early
    /// if one of them dies.
    /// </summary>
    public async Task WaitForActiveSilosAsync()
    {
        var started = Stopwatch.GetTimestamp();
        var management = Client.GetGrain<IManagementGrain>(0);
        var expected = Silos;
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
                // A gateway that just died, or membership still settling.
            }
            await Task.Delay(200);
        }
        throw new TimeoutException(
            $"Membership lists silo ports [{string.Join(", ", active)}] as active, expected [{string.Join(", ", ports)}]." +
            string.Concat(expected.Select(s => $"{Environment.NewLine}--- {s.Process.Name}:{Environment.NewLine}{s.Process.Tail(15)}")));
    }

    /// <summary>
    /// Stops the client, then the silos (gracefully or killed, as <see cref="LoopbackClusterOptions.StopSilosGracefully"/>
    /// says), then Redis, each by its own process id. A second call does nothing.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await DisconnectClientAsync();
        List<SiloProcess> silos;
        lock (_everyProcess)
        {
            silos = [.. _silos];
        }
        if (_options.StopSilosGracefully)
        {
            await Task.WhenAll(silos.Select(s => s.Process.StopAsync(TimeSpan.FromSeconds(10))));
        }
        else
        {
            foreach (var silo in silos)
            {
                silo.Process.Kill();
            }
        }
        if (_redis is not null)
        {
            await _redis.StopAsync(TimeSpan.FromSeconds(5));
        }
        AppDomain.CurrentDomain.ProcessExit -= KillEverything;
        lock (_everyProcess)
        {
            foreach (var process in _everyProcess)
            {
                process.Dispose();
            }
            _everyProcess.Clear();
            _silos.Clear();
        }
        _redis = null;
    }

    /// <summary>
    /// The environment a silo gets: docker/docker-compose.yml's keys with this run's ports and Redis, then the caller's
    /// <see cref="LoopbackClusterOptions.SiloEnvironment"/>. Failure-detection tuning and the assembly source are left to
    /// the caller: the tests want compose's values, the benchmark Orleans' and the silo's defaults.
    /// </summary>
    private Dictionary<string, string> SiloEnvironment(int siloPort, int gatewayPort)
    {
        var environment = new Dictionary<string, string>
        {
            ["Orleans__ClusterId"] = ClusterId,
            ["Orleans__ServiceId"] = "isolategrains",
            ["Orleans__Clustering"] = "Redis",
            ["Orleans__Redis"] = $"127.0.0.1:{RedisPort}",
            ["Orleans__AdvertisedIP"] = "127.0.0.1",
            ["Orleans__SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture),
            ["Orleans__GatewayPort"] = gatewayPort.ToString(CultureInfo.InvariantCulture),
            ["IsolateGrains__Storage"] = "Redis",
        };
        foreach (var (key, value) in _options.SiloEnvironment)
        {
            environment[key] = value;
        }
        return environment;
    }

    private string NewClusterIdValue() => _options.ClusterIdPrefix + Guid.NewGuid().ToString("N")[..12];

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
        var line = string.Create(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,6:0.0} s] {what}");
        lock (_log)
        {
            _log.AppendLine(line);
        }
        _options.Echo?.WriteLine(line);
    }
}

/// <summary>How a <see cref="LoopbackCluster"/> differs between its users.</summary>
public sealed record LoopbackClusterOptions
{
    /// <summary>The start of every cluster id ("cluster-tests-"), so a run's entries in Redis say whose they are.</summary>
    public required string ClusterIdPrefix { get; init; }

    /// <summary>Who needs the cluster ("These tests run"), for the message when redis-server is missing.</summary>
    public required string Purpose { get; init; }

    /// <summary>Environment variables every silo gets besides the docker-compose ones (they win over those).</summary>
    public IReadOnlyDictionary<string, string> SiloEnvironment { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Whether <see cref="LoopbackCluster.DisposeAsync"/> stops silos gracefully (they leave the cluster and snapshot
    /// their grains) or kills them at once (faster when nothing reads the snapshots).
    /// </summary>
    public bool StopSilosGracefully { get; init; } = true;

    /// <summary>Where each event is also written as it happens (the benchmark's stderr), besides <see cref="LoopbackCluster.Log"/>.</summary>
    public TextWriter? Echo { get; init; }
}

/// <summary>A silo process and its ports.</summary>
/// <param name="Process">The process.</param>
/// <param name="SiloPort">Its silo-to-silo port.</param>
/// <param name="GatewayPort">Its client gateway port.</param>
public sealed record SiloProcess(ChildProcess Process, int SiloPort, int GatewayPort);
