namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// What a snapshot can only be restored under: the image its pages are relative to and the runtime inside
/// it. Both the image's key and its memory hash are needed: the key names what went into the image, and two
/// builds from the same inputs still differ in their bytes (boot records times and random seeds).
/// </summary>
/// <param name="ImageKey">The module cache key of the image.</param>
/// <param name="ImageHash">The hash of the image's memory bytes (<see cref="ImageBaseline.HashMemory"/>).</param>
/// <param name="RuntimeVersion">The Mono runtime pack version.</param>
internal sealed record SnapshotIdentity(string ImageKey, string ImageHash, string RuntimeVersion)
{
    /// <summary>The identity of snapshots taken from sandboxes of <paramref name="image"/>.</summary>
    public static SnapshotIdentity Of(SandboxImage image) => new(image.ImageKey, image.Baseline.MemoryHash, WasmRuntimePack.RuntimePackVersion);

    /// <summary>Refuses, with a message that says why, a snapshot that was not taken from <paramref name="image"/>.</summary>
    public void EnsureCompatibleWith(SandboxImage image)
    {
        if (RuntimeVersion != WasmRuntimePack.RuntimePackVersion)
        {
            throw new IsolatedException(
                $"The snapshot cannot be restored: it was taken under .NET WebAssembly runtime {RuntimeVersion}, this host runs runtime {WasmRuntimePack.RuntimePackVersion}. " +
                "A snapshot can only be restored by a host with the same runtime image.");
        }
        if (ImageKey != image.ImageKey)
        {
            throw new IsolatedException(
                $"The snapshot cannot be restored: it was taken from image {ImageKey}, this host runs image {image.ImageKey}. " +
                "A snapshot can only be restored by a host with the same runtime image (same runtime pack, guest runtime, Wasmtime and .NET versions).");
        }
        var hash = image.Baseline.MemoryHash;
        if (ImageHash != hash)
        {
            throw new IsolatedException(
                $"The snapshot cannot be restored: it was taken from image {ImageKey} with memory {ImageHash}, but this host's build of that image has memory {hash}. " +
                "Image builds are reproducible, so the two builds did not run the same code (a different engine or build of the runtime); " +
                "hosts that restore each other's snapshots must run the same build of IsolateGrains.");
        }
    }
}
