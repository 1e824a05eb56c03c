namespace IsolateGrains.Tests;

/// <summary>The pre-initialized image is built once, reused by later hosts, and rebuilt when its cache entry is damaged.</summary>
public sealed class ModuleCacheTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "isolategrains-cache-test-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public void TheImageIsReusedAcrossHostsAndRebuiltWhenCorrupted()
    {
        _ = TestHosts.Shared; // keep the builds of this test from racing the shared host's
        var options = () => new IsolatedRuntimeHostOptions { ModuleCacheDirectory = _directory, Output = _ => { } };

        string cachePath;
        string? firstBuild;
        using (var first = new IsolatedRuntimeHost(options()).WithBinDirectoryAssemblyLoader())
        {
            Assert.False(first.LoadedFromCache);
            firstBuild = first.Image.State.MemoryHash;
            cachePath = first.ModuleCachePath;
            Assert.True(File.Exists(cachePath));
            using var runtime = new IsolatedRuntime(first);
            runtime.Invoke(() => Environment.GetEnvironmentVariables().Count);
        }

        using (var second = new IsolatedRuntimeHost(options()).WithBinDirectoryAssemblyLoader())
        {
            Assert.True(second.LoadedFromCache);
            Assert.Equal(cachePath, second.ModuleCachePath);
            using var runtime = new IsolatedRuntime(second);
            Assert.Equal(0, runtime.Invoke(() => Environment.GetEnvironmentVariables().Count));
        }

        // Damage the middle of the compiled module: the next host must notice, rebuild, and work.
        using (var stream = new FileStream(cachePath, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.Position = stream.Length / 2;
            stream.Write(new byte[4096].Select(_ => (byte)0xAB).ToArray());
        }
        using (var third = new IsolatedRuntimeHost(options()).WithBinDirectoryAssemblyLoader())
        {
            Assert.False(third.LoadedFromCache);
            // Builds are reproducible: the rebuilt image is byte for byte the first one, so snapshots taken
            // under either restore under the other (on another machine too).
            Assert.NotNull(firstBuild);
            Assert.Equal(firstBuild, third.Image.State.MemoryHash);
            using var runtime = new IsolatedRuntime(third);
            Assert.Equal(0, runtime.Invoke(() => Environment.GetEnvironmentVariables().Count));
        }

        using (var fourth = new IsolatedRuntimeHost(options()).WithBinDirectoryAssemblyLoader())
        {
            Assert.True(fourth.LoadedFromCache);
        }
    }

    [Fact]
    public void ATruncatedCacheEntryIsRebuilt()
    {
        _ = TestHosts.Shared;
        var directory = Path.GetDirectoryName(TestHosts.Shared.ModuleCachePath)!;
        // Copy the shared entry, then cut it short.
        Directory.CreateDirectory(_directory);
        var key = Path.GetFileNameWithoutExtension(TestHosts.Shared.ModuleCachePath);
        foreach (var extension in new[] { ".cwasm", ".json" })
        {
            File.Copy(Path.Combine(directory, key + extension), Path.Combine(_directory, key + extension));
        }
        var copy = Path.Combine(_directory, Path.GetFileName(TestHosts.Shared.ModuleCachePath));
        using (var stream = new FileStream(copy, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.SetLength(stream.Length / 3);
        }

        using var host = new IsolatedRuntimeHost(new IsolatedRuntimeHostOptions { ModuleCacheDirectory = _directory, Output = _ => { } }).WithBinDirectoryAssemblyLoader();

        Assert.False(host.LoadedFromCache);
        using var runtime = new IsolatedRuntime(host);
        Assert.Equal(0, runtime.Invoke(() => Environment.GetEnvironmentVariables().Count));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
