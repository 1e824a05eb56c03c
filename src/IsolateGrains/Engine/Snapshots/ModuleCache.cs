using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Wasmtime;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// The on-disk cache of the compiled, pre-initialized module. An entry is keyed by a hash of
/// everything that went into it (runtime module, guest runtime assemblies, BCL files, format
/// version, Wasmtime version), and carries a hash of its own bytes, so a stale entry is never found
/// and a corrupt one is detected, deleted and rebuilt instead of being loaded.
/// </summary>
internal sealed class ModuleCache(string directory)
{
    /// <summary>Bump when the image layout or the boot sequence changes.</summary>
    private const string FormatVersion = "isolategrains-image-1";

    /// <summary>The cache folder.</summary>
    public string Directory { get; } = directory;

    /// <summary>The key for a runtime pack.</summary>
    public static string ComputeKey(WasmRuntimePack pack)
    {
        var hash = new XxHash128();
        Append(hash, FormatVersion);
        Append(hash, typeof(Module).Assembly.GetName().Version?.ToString() ?? "");
        Append(hash, Environment.Version.ToString());
        hash.Append(File.ReadAllBytes(pack.NativeModulePath));
        // The image is built (and warmed) by this library's code, and holds its probe assembly.
        Append(hash, typeof(ModuleCache).Assembly.ManifestModule.ModuleVersionId.ToString());
        foreach (var file in pack.GuestFiles)
        {
            Append(hash, Path.GetFileName(file));
            hash.Append(File.ReadAllBytes(file));
        }
        // The BCL comes from a versioned, immutable package: names, sizes and times identify it cheaply.
        foreach (var file in pack.BclFiles)
        {
            var info = new FileInfo(file);
            Append(hash, $"{info.Name}|{info.Length}|{info.LastWriteTimeUtc.Ticks}");
        }
        return Convert.ToHexStringLower(hash.GetCurrentHash());
    }

    private static readonly ConcurrentDictionary<string, SemaphoreSlim> ProcessLocks = new(StringComparer.Ordinal);

    /// <summary>
    /// Holds the right to load-or-build one entry, across threads of this process (a semaphore) and across
    /// processes on this machine (an exclusive lock file). Dispose to release.
    /// </summary>
    public IDisposable AcquireBuildLock(string key)
    {
        var gate = ProcessLocks.GetOrAdd(Path.Combine(Path.GetFullPath(Directory), key), _ => new SemaphoreSlim(1, 1));
        gate.Wait();
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            var path = Path.Combine(Directory, key + ".lock");
            var deadline = DateTime.UtcNow.AddMinutes(10);
            while (true)
            {
                try
                {
                    var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                    return new BuildLock(gate, file);
                }
                catch (IOException) when (DateTime.UtcNow < deadline)
                {
                    Thread.Sleep(100); // Another process is building this entry.
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A cache directory we cannot lock (read-only, say) still works without coordination.
            return new BuildLock(gate, null);
        }
        catch
        {
            gate.Release();
            throw;
        }
    }

    private sealed class BuildLock(SemaphoreSlim gate, FileStream? file) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                file?.Dispose();
                gate.Release();
            }
        }
    }

    /// <summary>The path of an entry's compiled module.</summary>
    public string ModulePath(string key) => Path.Combine(Directory, key + ".cwasm");

    private string StatePath(string key) => Path.Combine(Directory, key + ".json");

    /// <summary>Loads an entry; on any mismatch or error deletes it and returns false.</summary>
    public bool TryLoad(Wasmtime.Engine engine, string key, out Module? module, out ImageState? state, out string? problem)
    {
        module = null;
        state = null;
        problem = null;
        var modulePath = ModulePath(key);
        var statePath = StatePath(key);
        if (!File.Exists(modulePath) || !File.Exists(statePath))
        {
            return false;
        }
        try
        {
            var entry = JsonSerializer.Deserialize<CacheEntry>(File.ReadAllText(statePath))
                ?? throw new InvalidDataException("empty state file");
            if (entry.Key != key)
            {
                throw new InvalidDataException("the entry belongs to another key");
            }
            if (HashFile(modulePath) != entry.ModuleHash)
            {
                throw new InvalidDataException("the compiled module's bytes do not match their recorded hash");
            }
            module = Module.DeserializeFile(engine, "isolategrains-preinitialized", modulePath);
            state = entry.State;
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or JsonException or WasmtimeException or NotSupportedException or ArgumentException)
        {
            problem = $"The cached module {modulePath} was unusable ({e.Message}); it is rebuilt.";
            module?.Dispose();
            module = null;
            TryDelete(modulePath);
            TryDelete(statePath);
            return false;
        }
    }

    /// <summary>Stores an entry atomically (module first, state last: an entry without state is ignored).</summary>
    public void Store(string key, byte[] serializedModule, ImageState state)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var modulePath = ModulePath(key);
        var temporary = modulePath + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllBytes(temporary, serializedModule);
        File.Move(temporary, modulePath, overwrite: true);

        var entry = new CacheEntry(key, Convert.ToHexStringLower(XxHash128.Hash(serializedModule)), state);
        var stateTemporary = StatePath(key) + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(stateTemporary, JsonSerializer.Serialize(entry));
        File.Move(stateTemporary, StatePath(key), overwrite: true);
        PruneOldEntries(keep: 3);
    }

    /// <summary>Deletes all but the newest entries: each is tens of megabytes, and old ones are never used again.</summary>
    private void PruneOldEntries(int keep)
    {
        var stale = new DirectoryInfo(Directory).GetFiles("*.json")
            .OrderByDescending(f => f.LastWriteTimeUtc)
            .Skip(keep);
        foreach (var state in stale)
        {
            var key = Path.GetFileNameWithoutExtension(state.Name);
            TryDelete(ModulePath(key));
            TryDelete(state.FullName);
        }
    }

    private static string HashFile(string path)
    {
        var hash = new XxHash128();
        using var stream = File.OpenRead(path);
        hash.Append(stream);
        return Convert.ToHexStringLower(hash.GetCurrentHash());
    }

    private static void Append(XxHash128 hash, string text) => hash.Append(Encoding.UTF8.GetBytes(text + "\n"));

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Another process may hold it; the next store overwrites it.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>What is saved beside the module.</summary>
    private sealed record CacheEntry(string Key, string ModuleHash, ImageState State);
}
