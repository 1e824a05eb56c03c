namespace IsolateGrains.Engine.FileSystem;

/// <summary>What a path in a sandbox's file system names.</summary>
internal enum VirtualNodeKind
{
    /// <summary>A directory.</summary>
    Directory,
    /// <summary>A regular file.</summary>
    File,
    /// <summary>A character device (console, <c>/dev/null</c>, the host channel).</summary>
    Device,
}

/// <summary>The devices a sandbox can open. None of them reaches anything on the host by itself.</summary>
internal enum DeviceKind
{
    /// <summary>Not a device.</summary>
    None,
    /// <summary>Standard input: always at end of file.</summary>
    StandardInput,
    /// <summary>Standard output, sent to the host's output sink.</summary>
    StandardOutput,
    /// <summary>Standard error, sent to the host's output sink.</summary>
    StandardError,
    /// <summary><c>/dev/null</c>.</summary>
    Null,
    /// <summary><c>/dev/host</c>: one <c>pread</c> carries a request to the host and its reply back.</summary>
    HostChannel,
}

/// <summary>
/// One node of a sandbox's virtual file system. Shared nodes (the BCL, the guest runtime) are read-only
/// and shared by every sandbox of a host; scratch nodes belong to one sandbox.
/// </summary>
internal sealed class VirtualNode
{
    private readonly Func<byte[]>? _load;
    private byte[]? _content;

    private VirtualNode(string path, VirtualNodeKind kind, long inode, bool writable, Func<byte[]>? load = null, long knownLength = 0)
    {
        _load = load;
        _knownLength = knownLength;
        Path = path;
        Kind = kind;
        Inode = inode;
        Writable = writable;
    }

    /// <summary>The absolute, normalized path.</summary>
    public string Path { get; }

    /// <summary>Directory, file or device.</summary>
    public VirtualNodeKind Kind { get; }

    /// <summary>The device this node stands for, if it is one.</summary>
    public DeviceKind Device { get; private init; }

    /// <summary>The inode number <c>stat</c> reports.</summary>
    public long Inode { get; }

    /// <summary>True for nodes in the sandbox's own scratch area.</summary>
    public bool Writable { get; }

    /// <summary>Names of the children of a directory, in order.</summary>
    public SortedSet<string> Children { get; } = new(StringComparer.Ordinal);

    /// <summary>Bytes of a writable file (its length is <see cref="ScratchLength"/>).</summary>
    public byte[] ScratchBuffer { get; set; } = [];

    /// <summary>Length of a writable file.</summary>
    public long ScratchLength { get; set; }

    private readonly long _knownLength;

    /// <summary>The size <c>stat</c> reports.</summary>
    public long Length => Kind switch
    {
        VirtualNodeKind.File when Writable => ScratchLength,
        VirtualNodeKind.File => _content?.Length ?? _knownLength,
        VirtualNodeKind.Directory => 4096,
        _ => 0,
    };

    /// <summary>The content of a read-only file, loaded from its source on first use.</summary>
    public ReadOnlySpan<byte> Content
    {
        get
        {
            if (Writable)
            {
                return ScratchBuffer.AsSpan(0, (int)ScratchLength);
            }

            var content = Volatile.Read(ref _content);
            if (content is null)
            {
                content = _load!();
                Interlocked.CompareExchange(ref _content, content, null);
                content = _content!;
            }
            return content;
        }
    }

    /// <summary>A directory.</summary>
    public static VirtualNode NewDirectory(string path, long inode, bool writable) => new(path, VirtualNodeKind.Directory, inode, writable);

    /// <summary>A read-only file whose bytes come from <paramref name="load"/> when first read.</summary>
    public static VirtualNode NewFile(string path, long inode, long length, Func<byte[]> load) =>
        new(path, VirtualNodeKind.File, inode, writable: false, load, length);

    /// <summary>A writable file in the scratch area.</summary>
    public static VirtualNode NewScratchFile(string path, long inode) => new(path, VirtualNodeKind.File, inode, writable: true);

    /// <summary>A device.</summary>
    public static VirtualNode NewDevice(string path, long inode, DeviceKind device) =>
        new(path, VirtualNodeKind.Device, inode, writable: false) { Device = device };
}
