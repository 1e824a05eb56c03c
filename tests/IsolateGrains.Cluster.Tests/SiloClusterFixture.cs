using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using ClusterDemo;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Runtime;
using IsolateGrains.Testing;

namespace IsolateGrains.Cluster.Tests;

/// <summary>
/// A real cluster on loopback: a redis-server, silo processes (<c>dotnet IsolateGrains.Silo.dll</c> from this
/// test's bin directory, configured by exactly the environment variables docker/docker-compose.yml gives its
/// silos) and an Orleans client in the test process. Every process is stopped by its id in <see cref="DisposeAsync"/>.
/// </summary>
public sealed class SiloClusterFixture : IAsyncLifetime
{
    /// <summary>How many silos the tests expect.</summary>
    public const int SiloCount = 3;

    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);
    private readonly List<ChildProcess> _everyProcess = [];
    private readonly List<Silo> _silos = [];
    private readonly StringBuilder _log = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private ChildProcess? _redis;
    private IHost? _clientHost;
    private int _siloNumber;

    /// <summary>This run's cluster: unique, so runs never see each other's silos or grains in Redis.</summary>
    public string ClusterId { get; } = "cluster-tests-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>The loopback port of this run's redis-server.</summary>
    public int RedisPort { get; private set; }

    /// <summary>The client, connected to the cluster.</summary>
    public IClusterClient Client => _clientHost?.Services.GetRequiredService<IClusterClient>() ?? throw new InvalidOperationException("The client is not started.");

    /// <summary>The silo processes that are running.</summary>
    public IReadOnlyList<Silo> Silos => [.. _silos.Where(s => !s.Process.HasExited)];

    /// <summary>What the fixture did and how long it took (for test output).</summary>
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

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        try
        {
            int redisPort;
            (_redis, redisPort) = await LoopbackServices.StartRedisAsync("These tests run");
            RedisPort = redisPort;
            Track(_redis);
            Note($"redis-server ready on 127.0.0.1:{RedisPort} (pid {_redis.Id})");
            // Otherwise the three silos would each build the runtime image at the same time (~10 s of CPU each).
            Note(await LoopbackServices.WarmModuleCacheAsync(BinDirectory));
            await EnsureSilosAsync();
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts silos until <see cref="SiloCount"/> run, connects the client if it is not, and waits until the
    /// cluster's membership lists exactly the running silos as active (a killed one declared dead).
    /// </summary>
    public async Task EnsureSilosAsync()
    {
        var missing = SiloCount - Silos.Count;
        for (var i = 0; i < missing; i++)
        {
            StartSilo();
        }
        await EnsureClientAsync();
        await WaitForActiveSilosAsync();
    }

    /// <summary>The silo hosting an activation, from <see cref="IsolateGrainStatus.Silo"/> ("S127.0.0.1:port:generation").</summary>
    public Silo? SiloOf(string siloAddress) => _silos.FirstOrDefault(s => siloAddress.Contains($":{s.SiloPort}:", StringComparison.Ordinal));

    /// <summary>Kills a silo process at once (SIGKILL), as when its machine dies.</summary>
    public void Kill(Silo silo)
    {
        silo.Process.Kill();
        Note($"killed {silo.Process.Name} (pid {silo.Process.Id}, silo port {silo.SiloPort})");
    }

    /// <summary>Stops every silo gracefully (SIGTERM, all at once); returns how long it took.</summary>
    public async Task<TimeSpan> StopAllSilosAsync()
    {
        var started = Stopwatch.GetTimestamp();
        var silos = Silos;
        var graceful = await Task.WhenAll(silos.Select(s => s.Process.StopAsync(TimeSpan.FromSeconds(20))));
        var elapsed = Stopwatch.GetElapsedTime(started);
        Note($"stopped {silos.Count} silos in {elapsed.TotalSeconds:0.0} s ({graceful.Count(g => g)} gracefully, {graceful.Count(g => !g)} killed after 20 s)");
        return elapsed;
    }

    /// <summary>The environment a silo gets: the keys and values docker/docker-compose.yml sets, with this run's ports.</summary>
    public IReadOnlyDictionary<string, string> SiloEnvironment(int siloPort, int gatewayPort) => new Dictionary<string, string>
    {
        ["Orleans__ClusterId"] = ClusterId,
        ["Orleans__ServiceId"] = "isolategrains",
        ["Orleans__Clustering"] = "Redis",
        ["Orleans__Redis"] = $"127.0.0.1:{RedisPort}",
        ["Orleans__AdvertisedIP"] = "127.0.0.1",
        ["Orleans__SiloPort"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Orleans__GatewayPort"] = gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        // Tuned failure detection: a dead silo is declared dead in a couple of seconds instead of 10-15 s.
        ["Orleans__Membership__ProbeTimeout"] = "00:00:01",
        ["Orleans__Membership__NumMissedProbesLimit"] = "2",
        ["Orleans__Membership__NumVotesForDeathDeclaration"] = "1",
        ["Orleans__Membership__TableRefreshTimeout"] = "00:00:02",
        ["Orleans__Membership__IAmAliveTablePublishTimeout"] = "00:00:05",
        ["IsolateGrains__Storage"] = "Redis",
        ["IsolateGrains__AssemblySource"] = "BinDirectoryThenUploaded",
    };

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_clientHost is not null)
        {
            try
            {
                using var expiry = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await _clientHost.StopAsync(expiry.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or OrleansException)
            {
                // The silos may be gone already; the processes are stopped below either way.
            }
            _clientHost.Dispose();
            _clientHost = null;
        }
        // Silos first, gracefully (they leave the cluster), then Redis; each by its own process id.
        await Task.WhenAll(_silos.Select(s => s.Process.StopAsync(TimeSpan.FromSeconds(10))));
        if (_redis is not null)
        {
            await _redis.StopAsync(TimeSpan.FromSeconds(5));
        }
        foreach (var process in _everyProcess)
        {
            process.Dispose();
        }
        // Nothing is left to stop: a second call (after a failed InitializeAsync) does nothing.
        _everyProcess.Clear();
        _silos.Clear();
        _redis = null;
    }

    private Silo StartSilo()
    {
        var ports = LocalPorts.Take(2);
        var name = $"silo-{++_siloNumber}";
        var process = Track(LoopbackServices.StartSilo(name, BinDirectory, SiloEnvironment(ports[0], ports[1])));
        var silo = new Silo(process, ports[0], ports[1]);
        _silos.Add(silo);
        Note($"started {name} (pid {process.Id}, silo port {silo.SiloPort}, gateway port {silo.GatewayPort})");
        return silo;
    }

    private async Task EnsureClientAsync()
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
            // Silos that start later (the restart test) are used within a second.
            ["Orleans:GatewayListRefreshPeriod"] = "00:00:01",
        };
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        // No default sources or console logging: the client logs nothing into the test output.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var connectStarted = Stopwatch.GetTimestamp();
        builder.Services.AddOrleansClient(client =>
        {
            ClientConfiguration.Configure(client, configuration);
            // The silos may not have written themselves into the membership table yet.
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

    /// <summary>Waits until membership lists exactly the running silos as active; fails early if a silo process died.</summary>
    private async Task WaitForActiveSilosAsync()
    {
        var started = Stopwatch.GetTimestamp();
        var management = Client.GetGrain<IManagementGrain>(0);
        var expected = Silos.Select(s => s.SiloPort).Order().ToArray();
        int[] active = [];
        while (Stopwatch.GetElapsedTime(started) < ReadyTimeout)
        {
            if (_silos.FirstOrDefault(s => s.Process.HasExited && expected.Contains(s.SiloPort)) is { } dead)
            {
                throw new InvalidOperationException($"{dead.Process.Name} exited ({dead.Process.ExitCode}):{Environment.NewLine}{dead.Process.Tail()}");
            }
            try
            {
                var hosts = await management.GetHosts(onlyActive: true).WaitAsync(TimeSpan.FromSeconds(5));
                active = [.. hosts.Keys.Select(s => s.Endpoint.Port).Order()];
                if (active.SequenceEqual(expected))
                {
                    Note($"{expected.Length} silos active in membership");
                    return;
                }
            }
            catch (Exception e) when (Calls.IsTransient(e))
            {
                // A gateway that just died, or membership still settling.
            }
            await Task.Delay(200);
        }
        throw new TimeoutException(
            $"Membership lists silo ports [{string.Join(", ", active)}] as active, expected [{string.Join(", ", expected)}]." +
            string.Concat(_silos.Select(s => $"{Environment.NewLine}--- {s.Process.Name}:{Environment.NewLine}{s.Process.Tail(15)}")));
    }

    private ChildProcess Track(ChildProcess process)
    {
        _everyProcess.Add(process);
        return process;
    }

    private void Note(string what)
    {
        lock (_log)
        {
            _log.AppendLine($"[{_clock.Elapsed.TotalSeconds,6:0.0} s] {what}");
        }
    }

    /// <summary>The dotnet executable that runs these tests (the SDK sets DOTNET_HOST_PATH), else the one on PATH.</summary>
}

/// <summary>A silo process and its ports.</summary>
/// <param name="Process">The process.</param>
/// <param name="SiloPort">Its silo-to-silo port.</param>
/// <param name="GatewayPort">Its client gateway port.</param>
public sealed record Silo(ChildProcess Process, int SiloPort, int GatewayPort);

/// <summary>The tests that share one <see cref="SiloClusterFixture"/> (run one after another).</summary>
[CollectionDefinition(Name)]
public sealed class SiloClusterCollection : ICollectionFixture<SiloClusterFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "multi-process silo cluster";
}
