using IsolateGrains.Engine.Snapshots;

namespace IsolateGrains;

/// <summary>
/// What a sandbox snapshot (<see cref="IsolatedRuntime.CaptureSnapshot"/>) holds, read from its header:
/// which image and runtime it needs, and how much of the sandbox's memory differs from that image.
/// </summary>
public sealed class IsolatedSnapshotInfo
{
    private IsolatedSnapshotInfo(SnapshotHeader header)
    {
        SizeBytes = header.TotalLength;
        ImageKey = header.Identity.ImageKey;
        RuntimeVersion = header.Identity.RuntimeVersion;
        MemoryBytes = header.MemoryBytes;
        PageSize = header.PageSize;
        ChangedPages = header.ChangedPages;
    }

    /// <summary>The snapshot's size in bytes.</summary>
    public long SizeBytes { get; }

    /// <summary>The key of the runtime image the snapshot was taken from; only a host running that image can restore it.</summary>
    public string ImageKey { get; }

    /// <summary>The version of the .NET WebAssembly runtime inside the sandbox.</summary>
    public string RuntimeVersion { get; }

    /// <summary>The sandbox's linear memory size in bytes.</summary>
    public long MemoryBytes { get; }

    /// <summary>The size of the memory pages the snapshot stores.</summary>
    public int PageSize { get; }

    /// <summary>How many pages of the sandbox's memory differ from the image (only those are stored).</summary>
    public int ChangedPages { get; }

    /// <summary>The bytes of memory that differ from the image, before compression.</summary>
    public long ChangedBytes => (long)ChangedPages * PageSize;

    /// <summary>
    /// Reads a snapshot's header and checks its length and checksum (without decompressing it). Throws an
    /// <see cref="IsolatedException"/> for bytes that are not a whole, intact snapshot.
    /// </summary>
    public static IsolatedSnapshotInfo Read(byte[] snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        return new IsolatedSnapshotInfo(SandboxSnapshot.ReadHeader(snapshot));
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{SizeBytes:N0} bytes: {ChangedPages:N0} changed pages of {PageSize / 1024} KiB in {MemoryBytes / (1024 * 1024)} MiB of memory, image {ImageKey}, runtime {RuntimeVersion}";
}
