namespace IsolateGrains.Engine.Snapshots;

/// <summary>What <see cref="ModuleCache"/> saves beside a compiled module (as JSON, <see cref="ModuleCacheJsonContext"/>).</summary>
/// <param name="Key">The entry's key.</param>
/// <param name="ModuleHash">The XxHash128 of the module file's bytes.</param>
/// <param name="State">The host state that goes with the module.</param>
/// <param name="Verified">
/// The module file's fingerprint when its bytes last matched <paramref name="ModuleHash"/>; null when never
/// taken (no fingerprints on this system, or an entry written before they existed).
/// </param>
internal sealed record ModuleCacheEntry(string Key, string ModuleHash, ImageState State, FileFingerprint? Verified = null);
