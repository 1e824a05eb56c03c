using System.Diagnostics;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace IsolateGrains.Benchmarks;

/// <summary>A plain grain that echoes: the baseline for sandboxed grain calls.</summary>
public interface IEchoGrain : IGrainWithStringKey
{
    /// <summary>Returns its argument plus one.</summary>
    Task<int> Next(int value);
}

/// <summary>The echo grain.</summary>
public sealed class EchoGrain : Grain, IEchoGrain
{
    /// <inheritdoc />
    public Task<int> Next(int value) => Task.FromResult(value + 1);
}

/// <summary>The grain rows of the quick table, measured in one in-process single-silo cluster.</summary>
public static class GrainRows
{
    /// <summary>Measures and returns the rows.</summary>
    public static async Task<List<string[]>> MeasureAsync(Func<IsolatedRuntimeHost> hostFactory)
    {
        var rows = new List<string[]>();
        await using var cluster = await StartSingleSiloAsync();
        var client = cluster.Client;

        var isolate = client.GetGrain<IIsolateGrain>("bench");
        var echo = client.GetGrain<IEchoGrain>("bench");
        var x = 41;
        await isolate.Invoke(() => x + 1);
        await echo.Next(x);
        const int Calls = 2000;
        // Warm both paths first (tiered JIT), so the loops compare steady states; then alternate short rounds of each, so
        // that a burst of load elsewhere on the machine hits both alike, and take each side's median round.
        await PerCallAsync(3 * Calls, () => isolate.Invoke(() => x + 1));
        await PerCallAsync(3 * Calls, () => echo.Next(x));
        var isolateRounds = new double[7];
        var echoRounds = new double[7];
        for (var round = 0; round < isolateRounds.Length; round++)
        {
            isolateRounds[round] = await PerCallAsync(Calls, () => isolate.Invoke(() => x + 1));
            echoRounds[round] = await PerCallAsync(Calls, () => echo.Next(x));
        }
        var (isolateTime, echoTime) = (Measure.Median([.. isolateRounds.Order()]), Measure.Median([.. echoRounds.Order()]));
        rows.Add([$"Grain `Invoke(() => x + 1)` (in-process cluster, median of {isolateRounds.Length} rounds)", Measure.Time(isolateTime), Measure.Time(echoTime), "plain echo grain call, same cluster", "≤ 1.5× baseline"]);

        var writeThrough = client.GetGrain<IIsolateGrain>("bench-write-through");
        await writeThrough.Invoke(() => x + 1);

        // Snapshot size and restore time for a sandbox holding a small object.
        using var host = hostFactory();
        using var runtime = new IsolatedRuntime(host);
        using var book = runtime.CreateObject<SmallObject>();
        for (var i = 0; i < 10; i++)
        {
            book.InvokeVoid("Add", "name" + i, i);
        }
        var snapshot = runtime.CaptureSnapshot();
        var capture = Measure.Samples(20, () => runtime.CaptureSnapshot());
        var restore = Measure.Samples(20, () => IsolatedRuntime.Restore(host, snapshot).Dispose());
        var fresh = Measure.Samples(20, () => new IsolatedRuntime(host).Dispose());
        rows.Add(["Snapshot of a sandbox holding a small object", Measure.Bytes(snapshot.Length), "", "", "≤ 512 KB"]);
        rows.Add(["Snapshot capture / restore (median)", $"{Measure.Time(Measure.Median(capture))} / {Measure.Time(Measure.Median(restore))}", Measure.Time(Measure.Median(fresh)), "creating a fresh sandbox", "restore ≤ 5 ms"]);
        return rows;
    }

    /// <summary>
    /// Starts a one-silo in-process cluster with the isolate grains. Snapshots on deactivation only: the grain
    /// rows compare the call itself with an echo grain; write-through cost is the snapshot row.
    /// </summary>
    public static async Task<InProcessTestCluster> StartSingleSiloAsync()
    {
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) => silo.AddIsolateGrains(o => o.SnapshotPolicy = IsolateGrains.Hosting.SnapshotPolicy.OnDeactivation));
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    private static async Task<double> PerCallAsync(int count, Func<Task> call)
    {
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            await call();
        }
        return Stopwatch.GetElapsedTime(started).TotalMicroseconds / count;
    }

    /// <summary>A small stateful object for the snapshot rows.</summary>
    public sealed class SmallObject
    {
        private readonly Dictionary<string, int> _entries = [];

        /// <summary>Adds an entry.</summary>
        public void Add(string name, int value) => _entries[name] = value;
    }
}
