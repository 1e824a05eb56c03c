using System.Diagnostics;
using Xunit.Abstractions;

namespace IsolateGrains.Cluster.Tests;

/// <summary>The whole cluster stops and three new silos start on the same Redis: sandboxes come back with their state.</summary>
[Collection(SiloClusterCollection.Name)]
public sealed class RestartTests(SiloClusterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task SandboxesSurviveAFullClusterRestart()
    {
        await fixture.EnsureSilosAsync();
        var prefix = "restart-" + Guid.NewGuid().ToString("N")[..8];
        var grains = Enumerable.Range(0, 30).Select(i => fixture.Client.GetGrain<IIsolateGrain>($"{prefix}-{i}")).ToArray();
        // Setting is safe to retry; each sandbox gets its own value.
        var written = await Task.WhenAll(grains.Select((g, i) => Calls.RetryAsync(() => g.Invoke(SandboxCode.Set(1000 + i)))));
        var oldSilos = fixture.Silos;

        var stopTime = await fixture.StopAllSilosAsync();
        var started = Stopwatch.GetTimestamp();
        await fixture.EnsureSilosAsync();
        var startTime = Stopwatch.GetElapsedTime(started);
        started = Stopwatch.GetTimestamp();
        var values = await Task.WhenAll(grains.Select(g => Calls.RetryAsync(() => g.Invoke(SandboxCode.Read()))));
        var firstCalls = Stopwatch.GetElapsedTime(started);
        var statuses = await Task.WhenAll(grains.Select(g => Calls.RetryAsync(() => g.GetStatus())));

        output.WriteLine(fixture.Log);
        output.WriteLine($"Stopped 3 silos in {stopTime.TotalSeconds:0.0} s, started 3 new ones in {startTime.TotalSeconds:0.0} s; " +
            $"30 sandboxes restored and called in {firstCalls.TotalSeconds:0.0} s.");
        output.WriteLine("Grains per new silo: " + string.Join(", ", statuses.GroupBy(s => fixture.SiloOf(s.Silo)?.Process.Name).Select(g => $"{g.Key} {g.Count()}")));

        Assert.Equal(Enumerable.Range(1000, 30), written);
        Assert.Equal(written, values);
        Assert.All(statuses, s => Assert.Equal("storage", s.RestoredFrom));
        Assert.All(statuses, s => Assert.Contains(fixture.SiloOf(s.Silo), fixture.Silos));
        Assert.All(statuses, s => Assert.DoesNotContain(fixture.SiloOf(s.Silo), oldSilos));
        Assert.All(oldSilos, s => Assert.True(s.Process.HasExited));
    }
}
