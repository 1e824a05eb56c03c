using IsolateGrains.Engine.Snapshots;

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
        // Copy the shared entry, then cut it short.
        CopySharedEntry();
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

    [Fact]
    public void AModuleRewrittenAfterItWasVerifiedIsRefused()
    {
        _ = TestHosts.Shared;
        var key = CopySharedEntry();
        var modulePath = Path.Combine(_directory, key + ".cwasm");
        var cache = new ModuleCache(_directory);
        var engine = TestHosts.Shared.Image.Engine.Engine;

        // The first load hashes the module and records its file's fingerprint; the next one trusts the fingerprint.
        Assert.True(cache.TryLoad(engine, key, out var module, out _, out var problem), problem);
        module!.Dispose();
        if (OperatingSystem.IsLinux())
        {
            Assert.Contains("\"Verified\":{", File.ReadAllText(Path.Combine(_directory, key + ".json")));
        }
        Assert.True(cache.TryLoad(engine, key, out module, out _, out problem), problem);
        module!.Dispose();

        // Same length, modification time put back: only the change time (which cannot be set) shows the write.
        Thread.Sleep(50);
        var modified = File.GetLastWriteTimeUtc(modulePath);
        using (var stream = new FileStream(modulePath, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.Position = stream.Length / 2;
            stream.Write(new byte[4096].Select(_ => (byte)0xAB).ToArray());
        }
        File.SetLastWriteTimeUtc(modulePath, modified);

        Assert.False(cache.TryLoad(engine, key, out module, out _, out problem));
        Assert.Null(module);
        Assert.Contains("do not match their recorded hash", problem);
        Assert.False(File.Exists(modulePath));
    }

    [Fact]
    public void AnEntryWithoutAFingerprintIsHashedThenFingerprinted()
    {
        _ = TestHosts.Shared;
        var key = CopySharedEntry();
        var statePath = Path.Combine(_directory, key + ".json");
        // An entry as written before fingerprints existed: no "Verified" member.
        var state = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(statePath))!.AsObject();
        state.Remove("Verified");
        File.WriteAllText(statePath, state.ToJsonString());

        var cache = new ModuleCache(_directory);
        Assert.True(cache.TryLoad(TestHosts.Shared.Image.Engine.Engine, key, out var module, out var loaded, out var problem), problem);
        module!.Dispose();
        Assert.Equal(TestHosts.Shared.Image.State.MemoryHash, loaded!.MemoryHash);
        Assert.Equal(OperatingSystem.IsLinux(), File.ReadAllText(statePath).Contains("\"Verified\":{", StringComparison.Ordinal));
    }

    /// <summary>Copies the shared host's cache entry into this test's directory and returns its key.</summary>
    private string CopySharedEntry()
    {
        var directory = Path.GetDirectoryName(TestHosts.Shared.ModuleCachePath)!;
        var key = Path.GetFileNameWithoutExtension(TestHosts.Shared.ModuleCachePath);
        Directory.CreateDirectory(_directory);
        foreach (var extension in new[] { ".cwasm", ".json" })
        {
            File.Copy(Path.Combine(directory, key + extension), Path.Combine(_directory, key + extension));
        }
        return key;
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
