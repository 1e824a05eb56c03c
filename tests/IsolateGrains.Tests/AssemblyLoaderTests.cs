namespace IsolateGrains.Tests;

/// <summary>Which assemblies a sandbox can load is decided by the host's loaders.</summary>
public sealed class AssemblyLoaderTests
{
    private static readonly string TestAssemblyName = typeof(AssemblyLoaderTests).Assembly.GetName().Name!;

    [Fact]
    public void WithoutALoaderOnlyTheBclIsLoadableAndTheErrorNamesTheAssembly()
    {
        using var host = TestHosts.Create();
        using var runtime = new IsolatedRuntime(host);

        var error = Assert.Throws<IsolatedException>(() => runtime.Invoke(() => 1 + 1));

        Assert.Contains(TestAssemblyName, error.Message);
        Assert.Equal(typeof(FileNotFoundException).FullName, error.GuestExceptionType);
    }

    [Fact]
    public void AFailingLoaderIsSkippedWithoutFaultingTheSandboxOrTellingItWhy()
    {
        using var host = TestHosts.Create()
            .WithAssemblyLoader(name => throw new IOException("storage is down at /srv/secret-path"))
            .WithBinDirectoryAssemblyLoader();
        using var failing = TestHosts.Create().WithAssemblyLoader(name => throw new IOException("storage is down at /srv/secret-path"));
        using var runtime = new IsolatedRuntime(host);
        using var alone = new IsolatedRuntime(failing);

        Assert.Equal(2, runtime.Invoke(() => 1 + 1));
        var error = Assert.Throws<IsolatedException>(() => alone.Invoke(() => 1 + 1));

        Assert.False(error.IsFatal);
        Assert.Contains(TestAssemblyName, error.Message);
        Assert.DoesNotContain("secret-path", error.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, alone.ResetCount);
    }

    [Fact]
    public void LoadersAreAskedInOrderAndTheFirstNonNullAnswerWins()
    {
        var asked = new List<string>();
        using var host = TestHosts.Create()
            .WithAssemblyLoader(name => { asked.Add("first:" + name); return null; })
            .WithAssemblyLoader(name => { asked.Add("second:" + name); return name == TestAssemblyName ? File.ReadAllBytes(typeof(AssemblyLoaderTests).Assembly.Location) : null; })
            .WithAssemblyLoader(name => throw new InvalidOperationException("the third loader must not be asked for " + name));
        using var runtime = new IsolatedRuntime(host);

        Assert.Equal(2, runtime.Invoke(() => 1 + 1));
        Assert.Contains("first:" + TestAssemblyName, asked);
        Assert.Contains("second:" + TestAssemblyName, asked);
    }

    [Fact]
    public void AnAssemblyIsFetchedFromTheLoadersOncePerHost()
    {
        var loads = 0;
        var bytes = File.ReadAllBytes(typeof(AssemblyLoaderTests).Assembly.Location);
        using var host = TestHosts.Create().WithAssemblyLoader(name =>
        {
            if (name != TestAssemblyName)
            {
                return null;
            }
            Interlocked.Increment(ref loads);
            return bytes;
        });
        using var first = new IsolatedRuntime(host);
        using var second = new IsolatedRuntime(host);

        Assert.Equal(3, first.Invoke(() => 1 + 2));
        Assert.Equal(5, second.Invoke(() => 2 + 3));
        Assert.Equal(1, loads);
    }

    [Fact]
    public void PathLikeAssemblyNamesAreRefused()
    {
        using var host = TestHosts.Create().WithAssemblyLoader(name => throw new InvalidOperationException("must not be asked"));

        Assert.Null(host.LoadAssembly("../../etc/passwd"));
        Assert.Null(host.LoadAssembly("..\\secrets"));
        Assert.Null(host.LoadAssembly(""));
    }
}
