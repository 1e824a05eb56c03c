using System.Runtime.InteropServices;

namespace IsolateGrains.Tests;

/// <summary>The examples of the seed library's README, with the behaviour it shows.</summary>
public sealed class SeedExampleTests : IDisposable
{
    private readonly IsolatedRuntime _runtime = new(TestHosts.Shared);

    [Fact]
    public void GuestRunsOnWebAssemblyWhileTheHostDoesNot()
    {
        var runtime = _runtime;
        var guestArchitecture = runtime.Invoke(() => RuntimeInformation.OSArchitecture);
        var guestKnowsItIsSandboxed = runtime.Invoke(() => DotNetIsolatorHost.IsInSandbox);

        Assert.Equal(Architecture.Wasm, guestArchitecture);
        Assert.NotEqual(Architecture.Wasm, RuntimeInformation.OSArchitecture);
        Assert.True(guestKnowsItIsSandboxed);
        Assert.False(DotNetIsolatorHost.IsInSandbox);
    }

    [Fact]
    public void GuestSeesNoneOfTheHostsEnvironmentVariables()
    {
        var runtime = _runtime;
        Environment.SetEnvironmentVariable("ISOLATEGRAINS_TEST_SECRET", "do-not-leak");

        var guestCount = runtime.Invoke(() => Environment.GetEnvironmentVariables().Count);
        var guestSecret = runtime.Invoke(() => Environment.GetEnvironmentVariable("ISOLATEGRAINS_TEST_SECRET"));

        Assert.True(Environment.GetEnvironmentVariables().Count > 0);
        Assert.Equal(0, guestCount);
        Assert.Null(guestSecret);
    }

    [Fact]
    public void MutationsInsideTheSandboxNeverReachTheHostsLocalsOrStatics()
    {
        var runtime = _runtime;
        var localValue = 100;
        StaticCounter.Value = 0;

        var seenInside = runtime.Invoke(() =>
        {
            localValue++;
            StaticCounter.Value++;
            return (localValue, StaticCounter.Value);
        });
        var secondCall = runtime.Invoke(() => ++StaticCounter.Value);

        Assert.Equal((101, 1), seenInside);
        Assert.Equal(2, secondCall); // the sandbox keeps its own statics between calls
        Assert.Equal(100, localValue);
        Assert.Equal(0, StaticCounter.Value);
    }

    [Fact]
    public void CapturedRecordsAreSummedInsideTheSandbox()
    {
        var runtime = _runtime;
        var people = new[] { new Person("Ann", 5), new Person("Bob", 7) };

        var total = runtime.Invoke(() => people.Sum(p => p.Age));

        Assert.Equal(12, total);
    }

    public void Dispose() => _runtime.Dispose();

    public sealed record Person(string Name, int Age);

    private static class StaticCounter
    {
        public static int Value;
    }
}
