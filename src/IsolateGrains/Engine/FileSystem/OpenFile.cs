namespace IsolateGrains.Engine.FileSystem;

/// <summary>An entry of a sandbox's file descriptor table.</summary>
internal sealed class OpenFile(VirtualNode node, int flags)
{
    /// <summary>The file, directory or device that was opened.</summary>
    public VirtualNode Node { get; } = node;

    /// <summary>The <c>O_*</c> flags it was opened with (access mode, append, …).</summary>
    public int Flags { get; set; } = flags;

    /// <summary>The read/write position (for directories: the index of the next entry times the dirent size).</summary>
    public long Position { get; set; }

    /// <summary>True when opened for writing (<c>O_WRONLY</c> or <c>O_RDWR</c>).</summary>
    public bool CanWrite => (Flags & OpenFlags.AccessMode) != OpenFlags.ReadOnly;

    /// <summary>True when opened for reading.</summary>
    public bool CanRead => (Flags & OpenFlags.AccessMode) != OpenFlags.WriteOnly;
}

/// <summary>One entry of a captured descriptor table.</summary>
/// <param name="Descriptor">The descriptor number.</param>
/// <param name="Path">The path that was opened.</param>
/// <param name="Flags">The open flags.</param>
/// <param name="Position">The position.</param>
internal sealed record OpenFileState(int Descriptor, string Path, int Flags, long Position);

/// <summary>The musl <c>O_*</c> and <c>AT_*</c> flag values the guest passes.</summary>
internal static class OpenFlags
{
    public const int ReadOnly = 0;
    public const int WriteOnly = 1;
    public const int ReadWrite = 2;
    public const int AccessMode = 3;
    public const int Create = 0x40;
    public const int Exclusive = 0x80;
    public const int Truncate = 0x200;
    public const int Append = 0x400;
    public const int Directory = 0x10000;

    /// <summary>The <c>dirfd</c> that means "the current directory".</summary>
    public const int AtCurrentDirectory = -100;
    /// <summary><c>unlinkat</c> flag: remove a directory.</summary>
    public const int AtRemoveDirectory = 0x200;
    /// <summary><c>fstatat</c> flag: an empty path means <c>dirfd</c> itself.</summary>
    public const int AtEmptyPath = 0x1000;
}
