using IsolateGrains.Testing;

namespace IsolateGrains.Cluster.Tests;

/// <summary>
/// A real cluster on loopback for the tests (tests/Shared/LoopbackCluster.cs): a redis-server, <see cref="SiloCount"/>
/// silo processes with membership failure detection tuned short and write-through snapshots, and a client.
/// Every process is stopped by its id in <see cref="DisposeAsync"/>.
/// </summary>
public sealed class SiloClusterFixture : IAsyncLifetime
{
    /// <summary>How many silos the tests expect.</summary>
    public const int SiloCount = 3;

    private readonly LoopbackCluster _cluster = new(new LoopbackClusterOptions
    {
        ClusterIdPrefix = "cluster-tests-",
        Purpose = "These tests run",
        SiloEnvironment = new Dictionary<string, string>
        {
            // Tuned failure detection: a dead silo is declared dead in a couple of seconds instead of 10-15 s.
            ["Orleans__Membership__ProbeTimeout"] = "00:00:01",
            ["Orleans__Membership__NumMissedProbesLimit"] = "2",
            ["Orleans__Membership__NumVotesForDeathDeclaration"] = "1",
            ["Orleans__Membership__TableRefreshTimeout"] = "00:00:02",
            ["Orleans__Membership__IAmAliveTablePublishTimeout"] = "00:00:05",
            // The lambdas the tests send are in this test's bin directory, which the silos run from.
            ["IsolateGrains__AssemblySource"] = "BinDirectoryThenUploaded",
        },
        // Gracefully: the silos leave the cluster before Redis goes.
        StopSilosGracefully = true,
    });

    /// <summary>This run's cluster: unique, so runs never see each other's silos or grains in Redis.</summary>
    public string ClusterId => _cluster.ClusterId;

    /// <summary>The loopback port of this run's redis-server.</summary>
    public int RedisPort => _cluster.RedisPort;

    /// <summary>The client, connected to the cluster.</summary>
    public IClusterClient Client => _cluster.Client;

    /// <summary>The silo processes that are running.</summary>
    public IReadOnlyList<SiloProcess> Silos => _cluster.Silos;

    /// <summary>What the fixture did and how long it took (for test output).</summary>
    public string Log => _cluster.Log;

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        try
        {
            await _cluster.StartRedisAsync();
            await _cluster.WarmModuleCacheAsync();
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
            _cluster.StartSilo();
        }
        await _cluster.ConnectClientAsync();
        await _cluster.WaitForActiveSilosAsync();
    }

    /// <summary>The silo hosting an activation, from <see cref="IsolateGrainStatus.Silo"/> ("S127.0.0.1:port:generation").</summary>
    public SiloProcess? SiloOf(string siloAddress) => _cluster.SiloOf(siloAddress);

    /// <summary>Kills a silo process at once (SIGKILL), as when its machine dies.</summary>
    public void Kill(SiloProcess silo) => _cluster.Kill(silo);

    /// <summary>Stops every silo gracefully (SIGTERM, all at once, killed after 20 s); returns how long it took.</summary>
    public Task<TimeSpan> StopAllSilosAsync() => _cluster.StopSilosAsync(TimeSpan.FromSeconds(20));

    /// <inheritdoc />
    public async Task DisposeAsync() => await _cluster.DisposeAsync();
}

/// <summary>The tests that share one <see cref="SiloClusterFixture"/> (run one after another).</summary>
[CollectionDefinition(Name)]
public sealed class SiloClusterCollection : ICollectionFixture<SiloClusterFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "multi-process silo cluster";
}
