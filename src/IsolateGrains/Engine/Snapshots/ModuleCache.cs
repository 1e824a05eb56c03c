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
/// <remarks>
/// Hashing the module (tens of megabytes) took most of a warm start, so an entry also records the
/// <see cref="FileFingerprint"/> of the module file its hash was last checked against: while the file
/// still has that fingerprint it has not been written since, and the hash is not recomputed. Any other
/// fingerprint (a write, a truncation, a copy, an entry from an older version) means a full hash, after
/// which the new fingerprint is recorded. What a fingerprint cannot see (bit rot, writes under the file
/// system) is therefore no longer caught after the first check; see <see cref="FileFingerprint"/>.
/// </remarks>
internal sealed class ModuleCache(string directory)
{
    /// <summary>Bump when the image layout or the boot sequence changes.</summary>
    private const string FormatVersion = "isolategrains-image-1";

    /// <summary>The cache folder.</summary>
    public string Directory { get; } = directory;

    /// <summary>
    /// The key for a runtime pack, from what identifies its inputs without reading them (a start reads
    /// none of the pack's 25 MB): the runtime module and the BCL come from one versioned, immutable package,
    /// so the pack version and each file's name, size and modification time identify them; the guest
    /// assemblies are the ones this process loaded, identified by their module version id (a new one
    /// for every compilation that changes them). The same build, copied with its file times, gets the
    /// same key on every machine, as snapshots require.
    /// </summary>
    public static string ComputeKey(WasmRuntimePack pack)
    {
        var hash = new XxHash128();
        Append(hash, FormatVersion);
        Append(hash, typeof(Module).Assembly.GetName().Version?.ToString() ?? "");
        Append(hash, Environment.Version.ToString());
        Append(hash, WasmRuntimePack.RuntimePackVersion);
        AppendFile(hash, new FileInfo(pack.NativeModulePath));
        // The image is built (and warmed) by this library's code, and holds its probe assembly.
        Append(hash, typeof(ModuleCache).Assembly.ManifestModule.ModuleVersionId.ToString());
        foreach (var assembly in pack.GuestAssemblies)
        {
            Append(hash, $"{assembly.GetName().Name}|{assembly.ManifestModule.ModuleVersionId:N}");
        }
        foreach (var file in pack.BclFiles)
        {
            AppendFile(hash, new FileInfo(file));
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
            var entry = JsonSerializer.Deserialize(File.ReadAllText(statePath), ModuleCacheJsonContext.Default.ModuleCacheEntry)
                ?? throw new InvalidDataException("empty state file");
            if (entry.Key != key)
            {
                throw new InvalidDataException("the entry belongs to another key");
            }
            var fingerprint = FileFingerprint.Of(modulePath);
            if (fingerprint is null || fingerprint != entry.Verified)
            {
                if (HashFile(modulePath) != entry.ModuleHash)
                {
                    throw new InvalidDataException("the compiled module's bytes do not match their recorded hash");
                }
                // Unless the file changed while it was hashed, later starts can trust these bytes without hashing.
                if (fingerprint is not null && FileFingerprint.Of(modulePath) == fingerprint)
                {
                    TryRecordVerified(key, entry with { Verified = fingerprint });
                }
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

        // The hash is of the bytes just written, so the file as it is now is already verified.
        var entry = new ModuleCacheEntry(key, Convert.ToHexStringLower(XxHash128.Hash(serializedModule)), state, FileFingerprint.Of(modulePath));
        WriteEntry(key, entry);
        PruneOldEntries(keep: 3);
    }

    /// <summary>Replaces an entry's state file atomically (write aside, then rename over).</summary>
    private void WriteEntry(string key, ModuleCacheEntry entry)
    {
        var stateTemporary = StatePath(key) + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(stateTemporary, JsonSerializer.Serialize(entry, ModuleCacheJsonContext.Default.ModuleCacheEntry));
        File.Move(stateTemporary, StatePath(key), overwrite: true);
    }

    /// <summary>Records a verified fingerprint; failing to (a read-only cache) only means hashing again next time.</summary>
    private void TryRecordVerified(string key, ModuleCacheEntry entry)
    {
        try
        {
            WriteEntry(key, entry);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
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

    private static void AppendFile(XxHash128 hash, FileInfo file) => Append(hash, $"{file.Name}|{file.Length}|{file.LastWriteTimeUtc.Ticks}");
}
