using IsolateGrains.Engine.FileSystem;
using IsolateGrains.Engine.Snapshots;
using Wasmtime;

namespace IsolateGrains.Engine;

/// <summary>
/// Everything a new sandbox is instantiated from: the compiled (pre-initialized) module, the host
/// state captured with it, the shared file system, and the host's limits and sinks.
/// </summary>
internal sealed class SandboxImage(
    SandboxEngine engine,
    Module module,
    ImageState state,
    VirtualFileSystem fileSystem,
    SandboxLimits limits,
    TimeProvider clock,
    Action<GuestOutput> output,
    Action<string, string>? trace)
{
    /// <summary>The engine and linker.</summary>
    public SandboxEngine Engine { get; } = engine;
    /// <summary>The compiled module.</summary>
    public Module Module { get; } = module;
    /// <summary>The host state captured with the module's memory.</summary>
    public ImageState State { get; } = state;
    /// <summary>The shared read-only files.</summary>
    public VirtualFileSystem FileSystem { get; } = fileSystem;
    /// <summary>The limits.</summary>
    public SandboxLimits Limits { get; } = limits;
    /// <summary>The wall clock sandboxes see.</summary>
    public TimeProvider Clock { get; } = clock;
    /// <summary>Where console output goes.</summary>
    public Action<GuestOutput> Output { get; } = output;
    /// <summary>
    /// True while building an image: the guest's clocks and entropy are then fixed sequences, so that two
    /// builds of the same inputs produce the same bytes (and snapshots restore on any machine that built it).
    /// </summary>
    public bool Deterministic { get; init; }

    /// <summary>Where runtime log lines go (sandbox name, text).</summary>
    public Action<string, string>? Trace { get; } = trace;

    /// <summary>
    /// The module cache key of the image (what went into it), which snapshots record. Images that are not
    /// from the cache (the builder's boot image) keep the placeholder.
    /// </summary>
    public string ImageKey { get; init; } = "unkeyed-boot-image";

    private readonly Lock _baselineGate = new();
    private ImageBaseline? _baseline;

    /// <summary>What snapshots are taken against: a never-run instance of the image, created on first use.</summary>
    public ImageBaseline Baseline
    {
        get
        {
            if (Volatile.Read(ref _baseline) is { } baseline)
            {
                return baseline;
            }
            lock (_baselineGate)
            {
                return _baseline ??= new ImageBaseline(this);
            }
        }
    }

    /// <summary>Releases the baseline instance, if one was created (before the engine goes).</summary>
    public void ReleaseBaseline()
    {
        lock (_baselineGate)
        {
            _baseline?.Dispose();
            _baseline = null;
        }
    }
}
