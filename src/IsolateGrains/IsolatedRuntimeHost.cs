using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using IsolateGrains.Engine;
using IsolateGrains.Engine.Boot;
using IsolateGrains.Engine.FileSystem;
using IsolateGrains.Engine.Snapshots;
using IsolateGrains.Engine.WarmStart;
using IsolateGrains.Protocol;
using MessagePack;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Module = Wasmtime.Module;

namespace IsolateGrains;

/// <summary>
/// Everything sandboxes share: the WebAssembly engine, the compiled pre-initialized runtime module
/// (built once and cached on disk), the read-only files, the limits and the assembly loaders.
/// Create one per process (it is thread-safe) and as many <see cref="IsolatedRuntime"/>s from it as
/// needed.
/// </summary>
public sealed class IsolatedRuntimeHost : IDisposable
{
    private readonly SandboxEngine _engine;
    private readonly Module _module;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, byte[]> _assemblies = new(StringComparer.OrdinalIgnoreCase);
    private readonly object _loadersGate = new();
    private Func<string, byte[]?>[] _loaders = [];
    private readonly WarmStartLearner? _warmStart;
    private int _sandboxCounter;
    private bool _disposed;

    /// <summary>Creates a host with default options.</summary>
    public IsolatedRuntimeHost() : this(new IsolatedRuntimeHostOptions())
    {
    }

    /// <summary>Creates a host. The first host on a machine builds the runtime image (seconds); later ones load it from the cache.</summary>
    /// <param name="options">Limits, cache location, clock and output sink.</param>
    /// <param name="loggerFactory">Where the host logs (cache rebuilds, refused loads, guest runtime messages).</param>
    public IsolatedRuntimeHost(IsolatedRuntimeHostOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("IsolateGrains.IsolatedRuntimeHost");
        var started = Stopwatch.GetTimestamp();

        var pack = WasmRuntimePack.Locate();
        var fileSystem = RuntimeBooter.CreateFileSystem(pack);
        _engine = new SandboxEngine();
        try
        {
            var cache = new ModuleCache(options.ResolveCacheDirectory());
            var key = ModuleCache.ComputeKey(pack);
            ImageState state;
            // One build per machine: hosts and processes that start together wait for the first build and load it
            // instead of all building at once (a build takes seconds of CPU).
            using var buildLock = cache.AcquireBuildLock(key);
            if (cache.TryLoad(_engine.Engine, key, out var cached, out var cachedState, out var problem))
            {
                _module = cached!;
                state = cachedState!;
                LoadedFromCache = true;
            }
            else
            {
                if (problem is not null)
                {
                    _logger.LogWarning("{Problem}", problem);
                }
                (_module, state) = BuildImage(pack, fileSystem, cache, key);
            }
            ModuleCachePath = cache.ModulePath(key);
            var limits = new SandboxLimits(options.MaxMemoryBytes, options.CallTimeout, options.MaxPayloadBytes, options.MaxScratchBytes);
            Image = new SandboxImage(_engine, _module, state, fileSystem, limits, options.Clock, options.Output, TraceGuest) { ImageKey = key };
            _warmStart = options.WarmStart ? new WarmStartLearner(Image, HandleHostRequest, _logger) : null;
        }
        catch
        {
            _engine.Dispose();
            throw;
        }
        StartupTime = Stopwatch.GetElapsedTime(started);
        _logger.LogInformation("IsolateGrains host ready in {Milliseconds:0} ms (image {Source}).", StartupTime.TotalMilliseconds, LoadedFromCache ? "from cache" : "built");
    }

    /// <summary>The options this host was created with.</summary>
    public IsolatedRuntimeHostOptions Options { get; }

    /// <summary>True when the runtime image came from the on-disk cache rather than being built.</summary>
    public bool LoadedFromCache { get; }

    /// <summary>The file of the cached compiled module.</summary>
    public string ModuleCachePath { get; }

    /// <summary>How long the constructor took.</summary>
    public TimeSpan StartupTime { get; }

    /// <summary>Where runtimes created from this host log.</summary>
    internal ILogger Logger => _logger;

    /// <summary>What new sandboxes are instantiated from.</summary>
    internal SandboxImage Image { get; }

    /// <summary>
    /// Lets sandboxes load assemblies from the application's folder (<see cref="AppContext.BaseDirectory"/>),
    /// which is where the lambdas' own assemblies live in most applications.
    /// </summary>
    public IsolatedRuntimeHost WithBinDirectoryAssemblyLoader()
    {
        var directory = AppContext.BaseDirectory;
        return WithAssemblyLoader(name =>
        {
            var path = Path.Combine(directory, name + ".dll");
            return File.Exists(path) ? File.ReadAllBytes(path) : null;
        });
    }

    /// <summary>
    /// Adds a loader: given an assembly's simple name, it returns the assembly's bytes or null. Loaders
    /// are asked in the order they were added; the first non-null answer wins. Without any loader only
    /// the BCL can be loaded inside sandboxes.
    /// </summary>
    public IsolatedRuntimeHost WithAssemblyLoader(Func<string, byte[]?> loader)
    {
        ArgumentNullException.ThrowIfNull(loader);
        lock (_loadersGate)
        {
            _loaders = [.. _loaders, loader];
        }
        return this;
    }

    /// <summary>
    /// Prepares new sandboxes for <paramref name="lambdas"/> without running them: their assemblies are
    /// loaded and their methods resolved in the warm-start template (see
    /// <see cref="IsolatedRuntimeHostOptions.WarmStart"/>), so the first call of each in a new sandbox is
    /// fast. The host learns this by itself from calls that succeeded; this is for warming up ahead of
    /// time (at service start, say). Completes when the template is ready; does nothing when warm start is off.
    /// </summary>
    public Task PrepareAsync(params Delegate[] lambdas)
    {
        ArgumentNullException.ThrowIfNull(lambdas);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_warmStart is null)
        {
            return Task.CompletedTask;
        }
        foreach (var lambda in lambdas)
        {
            _warmStart.Learn(GuestRequests.MethodToPrepare(lambda));
        }
        return _warmStart.WhenIdleAsync();
    }

    /// <summary>The warm-start learner, or null when warm start is off.</summary>
    internal WarmStartLearner? WarmStart => _warmStart;

    /// <summary>Notes that a sandbox of this host ran <paramref name="method"/> successfully (for warm start).</summary>
    internal void Learned(MethodToPrepare method) => _warmStart?.Learn(method);

    /// <summary>
    /// Creates a sandbox: an instantiation of the image, started from the warm-start template when there is
    /// one and <paramref name="warmStart"/> (a sandbox a snapshot is applied to must start from the bare image).
    /// </summary>
    internal Sandbox CreateSandbox(string? name, Func<ReadOnlySpan<byte>, byte[]>? hostRequestHandler = null, bool warmStart = true)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        name ??= "sandbox-" + Interlocked.Increment(ref _sandboxCounter);
        var sandbox = new Sandbox(Image, name, hostRequestHandler ?? HandleHostRequest);
        if (!warmStart || _warmStart?.Current is not { } template)
        {
            return sandbox;
        }
        try
        {
            if (template.TryApplyTo(sandbox))
            {
                return sandbox;
            }
        }
        catch (Exception e) when (e is IsolatedException or IOException or InvalidOperationException)
        {
            _logger.LogWarning(e, "Starting sandbox {Sandbox} from the warm-start template failed; it starts from the image.", name);
        }
        // Half-applied or refused: start over from the bare image.
        sandbox.Dispose();
        return new Sandbox(Image, name, hostRequestHandler ?? HandleHostRequest);
    }

    /// <summary>Answers the requests the guest runtime itself makes (assembly loads).</summary>
    internal byte[] HandleHostRequest(ReadOnlySpan<byte> request) =>
        HostRequests.Handle(request, LoadAssembly, problem => _logger.LogWarning("A sandbox sent a malformed request: {Problem}", problem));

    /// <summary>Finds an assembly's bytes through the loaders (cached per host). Null when none knows it.</summary>
    internal byte[]? LoadAssembly(string fullName)
    {
        string simpleName;
        try
        {
            simpleName = new AssemblyName(fullName).Name ?? "";
        }
        catch (Exception e) when (e is ArgumentException or FileLoadException)
        {
            return null;
        }
        // The name comes from untrusted code and is used to build paths: refuse anything path-like.
        if (simpleName.Length == 0 || simpleName.IndexOfAny(['/', '\\', ':', '\0']) >= 0 || simpleName.Contains("..", StringComparison.Ordinal))
        {
            _logger.LogWarning("A sandbox asked for an assembly with an invalid name: {Name}", fullName);
            return null;
        }
        // Found assemblies are kept; misses are not, so a loader that learns a name later (an upload) is asked again.
        if (_assemblies.TryGetValue(simpleName, out var cached))
        {
            return cached;
        }
        foreach (var loader in Volatile.Read(ref _loaders))
        {
            byte[]? bytes;
            try
            {
                bytes = loader(simpleName);
            }
            catch (Exception e)
            {
                // A failing loader (storage down, say) must not fault the sandbox that asked: the guest hears only that
                // the assembly was not found (never the host exception's message), the host logs why.
                _logger.LogError(e, "An assembly loader failed for {Name}; trying the next one.", simpleName);
                continue;
            }
            if (bytes is not null)
            {
                return _assemblies.GetOrAdd(simpleName, bytes);
            }
        }
        _logger.LogDebug("No assembly loader knows {Name}.", simpleName);
        return null;
    }

    /// <summary>Releases the engine. Sandboxes created from this host must be disposed first.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _warmStart?.Dispose();
        Image.ReleaseBaseline();
        _module.Dispose();
        _engine.Dispose();
    }

    private (Module, ImageState) BuildImage(WasmRuntimePack pack, VirtualFileSystem fileSystem, ModuleCache cache, string key)
    {
        var started = Stopwatch.GetTimestamp();
        var (bytes, state) = PreinitializedImageBuilder.Build(_engine, pack, fileSystem, TraceGuest);
        var module = Module.FromBytes(_engine.Engine, "isolategrains-preinitialized", bytes);
        try
        {
            cache.Store(key, module.Serialize(), state);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("The runtime image could not be cached in {Directory}: {Message}", cache.Directory, e.Message);
        }
        _logger.LogInformation("Built the pre-initialized runtime image in {Milliseconds:0} ms.", Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return (module, state);
    }

    private void TraceGuest(string sandbox, string message) => _logger.LogDebug("[{Sandbox}] {Message}", sandbox, message);
}
