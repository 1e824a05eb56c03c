namespace IsolateGrains.Tests;

/// <summary>CPU deadlines, memory limits and payload limits stop a guest without hurting the host.</summary>
public sealed class LimitTests : IDisposable
{
    private readonly IsolatedRuntimeHost _host = TestHosts.Create(options =>
    {
        // Short enough to keep the loop test quick, long enough that a fresh sandbox's first call (which loads
        // this test assembly into it) never hits it on a busy 2-core machine.
        options.CallTimeout = TimeSpan.FromSeconds(4);
        options.MaxMemoryBytes = 128L * 1024 * 1024;
        options.MaxPayloadBytes = 64 * 1024;
    }).WithBinDirectoryAssemblyLoader();

    [Fact]
    public void ALoopThatNeverEndsIsStoppedByTheDeadlineAndTheSandboxIsReset()
    {
        using var runtime = new IsolatedRuntime(_host);
        runtime.Invoke(() => { Spinner.Marker = 7; });

        var error = Assert.Throws<IsolatedException>(() => runtime.Invoke(() =>
        {
            while (true)
            {
                Spinner.Marker++;
            }
        }));

        Assert.Contains("deadline", error.Message);
        Assert.True(error.IsFatal);
        Assert.True(error.SandboxWasReset);
        Assert.Equal(1, runtime.ResetCount);
        // A fresh sandbox answers, without the old state.
        Assert.Equal(0, runtime.Invoke(() => Spinner.Marker));
    }

    [Fact]
    public void AnAllocationBombIsStoppedByTheMemoryLimit()
    {
        using var runtime = new IsolatedRuntime(_host);

        var error = Assert.Throws<IsolatedException>(() => runtime.Invoke(() =>
        {
            var hoard = new List<byte[]>();
            while (true)
            {
                hoard.Add(new byte[1024 * 1024]);
            }
        }));

        var mentionsMemory = error.Message.Contains("memory limit") || error.GuestExceptionType == typeof(OutOfMemoryException).FullName;
        Assert.True(mentionsMemory, error.ToString());
        Assert.True(runtime.MemoryBytes <= 128L * 1024 * 1024);
        Assert.Equal(3, runtime.Invoke(() => 1 + 2));
    }

    [Fact]
    public void AnOversizedRequestIsRefusedWithAMessageThatNamesThePayloadLimit()
    {
        using var runtime = new IsolatedRuntime(_host);
        var big = new byte[200 * 1024];

        var error = Assert.Throws<IsolatedException>(() => runtime.Invoke(() => big.Length));

        Assert.Contains("maximum payload", error.Message);
        Assert.False(error.IsFatal);
        Assert.Equal(0, runtime.ResetCount);
    }

    [Fact]
    public void AnOversizedReplyIsRefused()
    {
        using var runtime = new IsolatedRuntime(_host);

        var error = Assert.Throws<IsolatedException>(() => runtime.Invoke(() => new byte[200 * 1024]));

        Assert.Contains("maximum payload", error.Message);
        Assert.Equal(5, runtime.Invoke(() => 2 + 3));
    }

    [Fact]
    public void DeepRecursionFaultsTheSandboxNotTheHost()
    {
        using var runtime = new IsolatedRuntime(_host);

        var error = Assert.Throws<IsolatedException>(() => runtime.Invoke(() => Spinner.Recurse(0)));

        Assert.True(error.IsFatal || error.GuestExceptionType is not null, error.ToString());
        Assert.Equal(4, runtime.Invoke(() => 2 + 2));
    }

    [Fact]
    public void InvalidOptionsAreRefusedWithTheirNames()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new IsolatedRuntimeHost(new IsolatedRuntimeHostOptions { MaxMemoryBytes = 1024 }));
        Assert.Equal(nameof(IsolatedRuntimeHostOptions.MaxMemoryBytes), error.ParamName);
    }

    public void Dispose() => _host.Dispose();

    private static class Spinner
    {
        public static int Marker;

        public static int Recurse(int depth) => Recurse(depth + 1) + 1;
    }
}
