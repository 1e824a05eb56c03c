using Orleans.Hosting;
using Orleans.TestingHost;

namespace IsolateGrains.Grains.Tests;

/// <summary>
/// A silo configured to load sandbox code only from uploads: the lambda's assembly is refused until a
/// client uploads it, then it runs. (The other tests use the silo's bin directory, the default.)
/// </summary>
public sealed class UploadedAssemblyTests : IAsyncLifetime
{
    private InProcessTestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) => silo.AddIsolateGrains(options => options.AssemblySource = IsolateGrains.Hosting.AssemblySource.Uploaded));
        _cluster = builder.Build();
        await _cluster.DeployAsync();
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task CodeRunsOnlyAfterItsAssemblyWasUploaded()
    {
        var client = _cluster.Client;
        var testAssembly = typeof(UploadedAssemblyTests).Assembly;
        var before = client.GetGrain<IIsolateGrain>("before-upload");

        var refused = await Assert.ThrowsAsync<IsolatedException>(() => before.Invoke(UploadedCode.Answer()));
        await client.UploadIsolateAssemblies(testAssembly);
        var after = client.GetGrain<IIsolateGrain>("after-upload");
        var answer = await after.Invoke(UploadedCode.Answer());
        var listed = await client.GetGrain<IIsolateAssemblyRegistry>(IsolateAssemblyUpload.RegistryKey).List();

        Assert.Contains(testAssembly.GetName().Name!, refused.Message);
        Assert.Equal(42, answer);
        Assert.Contains(testAssembly.GetName().Name!, listed);
    }
}

/// <summary>
/// The code the test uploads. It lives in a class of its own: the closure of a lambda written inside the
/// test class would drag the test class, and with it xunit, into the sandbox.
/// </summary>
public static class UploadedCode
{
    /// <summary>A lambda that needs only this assembly.</summary>
    public static Func<int> Answer() => () => 6 * 7;
}
