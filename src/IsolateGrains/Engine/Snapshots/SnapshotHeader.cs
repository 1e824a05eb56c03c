namespace IsolateGrains.Engine.Snapshots;

/// <summary>What a snapshot's uncompressed header says (see <see cref="SandboxSnapshot"/> for the format).</summary>
/// <param name="Identity">The image and runtime it was taken under.</param>
/// <param name="MemoryBytes">The sandbox's memory size.</param>
/// <param name="PageSize">The size of the stored pages.</param>
/// <param name="ChangedPages">How many pages differ from the image.</param>
/// <param name="BodyLength">The body's uncompressed length.</param>
/// <param name="CompressedLength">The body's compressed length.</param>
internal sealed record SnapshotHeader(
    SnapshotIdentity Identity,
    long MemoryBytes,
    int PageSize,
    int ChangedPages,
    long BodyLength,
    int CompressedLength)
{
    /// <summary>The format version (see <see cref="SandboxSnapshot.FormatVersion"/>).</summary>
    public ushort Version { get; init; } = SandboxSnapshot.FormatVersion;

    /// <summary>Where the compressed body starts in the snapshot.</summary>
    public int BodyStart { get; init; }

    /// <summary>The whole snapshot's length.</summary>
    public long TotalLength { get; init; }
}
