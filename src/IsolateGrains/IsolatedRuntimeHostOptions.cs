namespace IsolateGrains;

/// <summary>Settings of an <see cref="IsolatedRuntimeHost"/> and limits of every sandbox it creates.</summary>
public sealed class IsolatedRuntimeHostOptions
{
    /// <summary>The most linear memory one sandbox may use. Default 256 MiB; at least 64 MiB.</summary>
    public long MaxMemoryBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>How long one call may run inside a sandbox before it is stopped. Default 10 s.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The largest request (captured values, arguments) or reply crossing the boundary. Default 16 MiB.</summary>
    public int MaxPayloadBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>The most bytes a sandbox may keep in its private, in-memory <c>/tmp</c>. Default 16 MiB.</summary>
    public long MaxScratchBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>
    /// Where the compiled, pre-initialized module is cached between processes. Default: the
    /// <c>ISOLATEGRAINS_CACHE_DIR</c> environment variable, else <c>IsolateGrains/module-cache</c>
    /// under the user's local application data folder (the temp folder if there is none).
    /// </summary>
    public string? ModuleCacheDirectory { get; set; }

    /// <summary>
    /// Whether new sandboxes start warm. Default true: the host learns which lambdas its sandboxes run and
    /// keeps, in the background, a template sandbox in which their assemblies are loaded and their methods
    /// resolved (no user code runs in it); new sandboxes are copy-on-write copies of that template, so their
    /// first call skips that work and their memory shares it. False: every sandbox starts from the bare image.
    /// </summary>
    public bool WarmStart { get; set; } = true;

    /// <summary>The wall clock sandboxes see. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider Clock { get; set; } = TimeProvider.System;

    /// <summary>Where guest console output goes. Default <see cref="GuestOutput.WriteToConsole"/>.</summary>
    public Action<GuestOutput> Output { get; set; } = GuestOutput.WriteToConsole;

    /// <summary>Checks the values and throws <see cref="ArgumentOutOfRangeException"/> naming a bad one.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxMemoryBytes, 64L * 1024 * 1024, nameof(MaxMemoryBytes));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxMemoryBytes, 1L << 31, nameof(MaxMemoryBytes));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(CallTimeout, TimeSpan.Zero, nameof(CallTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPayloadBytes, 1024, nameof(MaxPayloadBytes));
        ArgumentOutOfRangeException.ThrowIfNegative(MaxScratchBytes, nameof(MaxScratchBytes));
        ArgumentNullException.ThrowIfNull(Clock, nameof(Clock));
        ArgumentNullException.ThrowIfNull(Output, nameof(Output));
    }

    /// <summary>The cache directory to use.</summary>
    internal string ResolveCacheDirectory()
    {
        if (!string.IsNullOrWhiteSpace(ModuleCacheDirectory))
        {
            return ModuleCacheDirectory;
        }
        if (Environment.GetEnvironmentVariable("ISOLATEGRAINS_CACHE_DIR") is { Length: > 0 } fromEnvironment)
        {
            return fromEnvironment;
        }
        var root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create);
        if (string.IsNullOrEmpty(root))
        {
            root = Path.GetTempPath();
        }
        return Path.Combine(root, "IsolateGrains", "module-cache");
    }
}
