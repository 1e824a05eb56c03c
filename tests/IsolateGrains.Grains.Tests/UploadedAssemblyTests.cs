using Orleans.Hosting;
using Orleans.TestingHost;

namespace IsolateGrains.Grains.Tests;

/// <summary>
/// A silo configured differently from the shared cluster: sandbox code only from uploads (the lambda's
/// assembly is refused until a client uploads it), and snapshots saved only on deactivation.
/// </summary>
public sealed class UploadedAssemblyTests : IAsyncLifetime
{
    private InProcessTestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) => silo.AddIsolateGrains(options =>
        {
            options.AssemblySource = IsolateGrains.Hosting.AssemblySource.Uploaded;
            options.SnapshotPolicy = IsolateGrains.Hosting.SnapshotPolicy.OnDeactivation;
        }));
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

    [Fact]
    public async Task WithOnDeactivationSnapshotsTheStateIsSavedWhenTheGrainDeactivates()
    {
        var client = _cluster.Client;
        await client.UploadIsolateAssemblies(typeof(UploadedAssemblyTests).Assembly);
        var grain = client.GetGrain<IIsolateGrain>("on-deactivation");
        await grain.Invoke(UploadedCode.SetCounter(5));
        Assert.Null((await grain.GetStatus()).SnapshotBytes); // nothing saved yet: not write-through

        await grain.Deactivate();
        await _cluster.WaitForDeactivationAsync(grain);

        Assert.Equal(6, await grain.Invoke(UploadedCode.IncrementCounter()));
        Assert.Equal("storage", (await grain.GetStatus()).RestoredFrom);
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

    /// <summary>Sets the sandbox's counter.</summary>
    public static Action SetCounter(int value) => () => Counter.Value = value;

    /// <summary>Increments the sandbox's counter.</summary>
    public static Func<int> IncrementCounter() => () => ++Counter.Value;

    private static class Counter
    {
        public static int Value;
    }
}
