namespace IsolateGrains.Engine;

/// <summary>The limits every sandbox of a host runs under (from <see cref="IsolatedRuntimeHostOptions"/>).</summary>
/// <param name="MaxMemoryBytes">The most linear memory one sandbox may have.</param>
/// <param name="CallTimeout">How long one call may run before it is stopped.</param>
/// <param name="MaxPayloadBytes">The largest request or reply crossing the boundary.</param>
/// <param name="MaxScratchBytes">The most bytes a sandbox may keep in its <c>/tmp</c>.</param>
internal sealed record SandboxLimits(long MaxMemoryBytes, TimeSpan CallTimeout, int MaxPayloadBytes, long MaxScratchBytes);
