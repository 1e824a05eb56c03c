namespace IsolateGrains.Tests;

/// <summary>A sandbox that fails takes nothing else down: not the host, not other sandboxes.</summary>
public sealed class FaultIsolationTests
{
    [Fact]
    public void ATrapInOneSandboxLeavesAnotherWorking()
    {
        using var healthy = new IsolatedRuntime(TestHosts.Shared);
        using var doomed = new IsolatedRuntime(TestHosts.Shared);
        healthy.Invoke(() => { Box.Value = 11; });
        doomed.Invoke(() => { Box.Value = 22; });

        var error = Assert.Throws<IsolatedException>(() => doomed.Invoke(() => Environment.FailFast("guest gave up")));

        Assert.True(error.IsFatal);
        Assert.Equal(11, healthy.Invoke(() => Box.Value));
        Assert.Equal(0, doomed.Invoke(() => Box.Value));
    }

    [Fact]
    public void ManySandboxesInOneHostEachKeepTheirOwnState()
    {
        var runtimes = Enumerable.Range(0, 40).Select(_ => new IsolatedRuntime(TestHosts.Shared)).ToList();
        try
        {
            for (var i = 0; i < runtimes.Count; i++)
            {
                var value = i;
                runtimes[i].Invoke(() => { Box.Value = value * 10; });
            }

            var values = runtimes.Select(r => r.Invoke(() => Box.Value)).ToList();

            Assert.Equal(Enumerable.Range(0, 40).Select(i => i * 10), values);
            Assert.Equal(40, runtimes.Select(r => r.Name).Distinct().Count());
        }
        finally
        {
            runtimes.ForEach(r => r.Dispose());
        }
    }

    [Fact]
    public void ConcurrentCallsFromManyThreadsAreQueuedNotInterleaved()
    {
        using var runtime = new IsolatedRuntime(TestHosts.Shared);
        runtime.Invoke(() => { Box.Value = 0; Box.InCall = false; });

        Parallel.For(0, 8, _ =>
        {
            for (var i = 0; i < 25; i++)
            {
                runtime.Invoke(() =>
                {
                    if (Box.InCall)
                    {
                        throw new InvalidOperationException("two calls were inside the sandbox at once");
                    }
                    Box.InCall = true;
                    var before = Box.Value;
                    Box.Value = before + 1;
                    Box.InCall = false;
                });
            }
        });

        Assert.Equal(200, runtime.Invoke(() => Box.Value));
    }

    [Fact]
    public void ADisposedRuntimeSaysSo()
    {
        var runtime = new IsolatedRuntime(TestHosts.Shared);
        runtime.Dispose();

        Assert.Throws<ObjectDisposedException>(() => runtime.Invoke(() => 1));
    }

    private static class Box
    {
        public static int Value;
        public static bool InCall;
    }
}
