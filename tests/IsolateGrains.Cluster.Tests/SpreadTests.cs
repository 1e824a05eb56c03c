using System.Diagnostics;
using Xunit.Abstractions;

namespace IsolateGrains.Cluster.Tests;

/// <summary>Isolate grains spread over the silos of a real multi-process cluster.</summary>
[Collection(SiloClusterCollection.Name)]
public sealed class SpreadTests(SiloClusterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task ThreeHundredSandboxesSpreadOverAllThreeSilos()
    {
        await fixture.EnsureSilosAsync();
        var prefix = "spread-" + Guid.NewGuid().ToString("N")[..8];
        // Enough calls in flight to keep every silo busy, few enough that none waits behind hundreds of others.
        using var inFlight = new SemaphoreSlim(32);
        var started = Stopwatch.GetTimestamp();

        var results = await Task.WhenAll(Enumerable.Range(0, 300).Select(async i =>
        {
            await inFlight.WaitAsync();
            try
            {
                var grain = fixture.Client.GetGrain<IIsolateGrain>($"{prefix}-{i}");
                // Setting (not incrementing) is safe to retry, so the answer is exact even if an attempt timed out.
                var value = await Calls.RetryAsync(() => grain.Invoke(SandboxCode.Set(i)));
                var status = await Calls.RetryAsync(() => grain.GetStatus());
                return (Value: value, status.Silo);
            }
            finally
            {
                inFlight.Release();
            }
        }));
        var elapsed = Stopwatch.GetElapsedTime(started);

        var perSilo = results.GroupBy(r => r.Silo).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        output.WriteLine(fixture.Log);
        output.WriteLine($"300 sandboxes created and called in {elapsed.TotalSeconds:0.0} s; per silo:");
        foreach (var silo in perSilo)
        {
            output.WriteLine($"  {silo.Key} ({fixture.SiloOf(silo.Key)?.Process.Name}): {silo.Count()}");
        }
        Assert.Equal(Enumerable.Range(0, 300), results.Select(r => r.Value));
        Assert.Equal(SiloClusterFixture.SiloCount, perSilo.Count);
        Assert.All(perSilo, silo => Assert.Contains(fixture.SiloOf(silo.Key), fixture.Silos));
    }
}
