namespace IsolateGrains.Engine.FileSystem;

/// <summary>What a sandbox's devices talk to: the host's output sink and the guest→host channel.</summary>
internal interface ISandboxDevices
{
    /// <summary>Takes bytes the guest wrote to standard output or standard error.</summary>
    void WriteOutput(DeviceKind stream, ReadOnlySpan<byte> bytes);

    /// <summary>
    /// Handles one guest→host exchange: <paramref name="buffer"/> holds the request and receives the
    /// reply. Returns the number of bytes of the reply written into it.
    /// </summary>
    int ExchangeWithHost(Span<byte> buffer);
}

/// <summary>
/// One sandbox's view of its file system: the shared read-only tree, its own writable scratch
/// directory, and its file descriptor table. Every method answers with an errno instead of throwing,
/// because the answers go straight back to the guest's libc.
/// </summary>
internal sealed class SandboxFileSystem
{
    /// <summary>The size of one <c>dirent64</c> record, as Emscripten lays it out.</summary>
    public const int DirentSize = 280;

    private const int MaxOpenFiles = 1024;
    private readonly VirtualFileSystem _shared;
    private readonly ISandboxDevices _devices;
    private readonly long _scratchQuota;
    private readonly Dictionary<string, VirtualNode> _scratch = new(StringComparer.Ordinal);
    private readonly List<OpenFile?> _table = [];
    private long _scratchBytes;

    /// <summary>Creates the file system of one sandbox with standard input, output and error open.</summary>
    public SandboxFileSystem(VirtualFileSystem shared, ISandboxDevices devices, long scratchQuotaBytes)
    {
        _shared = shared;
        _devices = devices;
        _scratchQuota = scratchQuotaBytes;
        _scratch[VirtualFileSystem.ScratchRoot] = VirtualNode.NewDirectory(VirtualFileSystem.ScratchRoot, shared.NextInode(), writable: true);
        _table.Add(new OpenFile(shared.Find("/dev/stdin")!, OpenFlags.ReadOnly));
        _table.Add(new OpenFile(shared.Find("/dev/stdout")!, OpenFlags.WriteOnly));
        _table.Add(new OpenFile(shared.Find("/dev/stderr")!, OpenFlags.WriteOnly));
    }

    /// <summary>The current directory.</summary>
    public string CurrentDirectory { get; private set; } = "/";

    /// <summary>Bytes the scratch directory holds.</summary>
    public long ScratchBytes => _scratchBytes;

    /// <summary>Resolves a path the guest gave relative to <paramref name="directoryFd"/>.</summary>
    public int Resolve(int directoryFd, string path, out string fullPath)
    {
        fullPath = "";
        string baseDirectory;
        if (path.StartsWith('/') || directoryFd == OpenFlags.AtCurrentDirectory)
        {
            baseDirectory = CurrentDirectory;
        }
        else if (Get(directoryFd) is { } directory)
        {
            baseDirectory = directory.Node.Path;
        }
        else
        {
            return Errno.BadFileDescriptor;
        }
        if (path.Length > 4096)
        {
            return Errno.NameTooLong;
        }
        fullPath = VirtualFileSystem.Normalize(baseDirectory, path);
        return Errno.Success;
    }

    /// <summary>The node at a normalized path: scratch first, then the shared tree.</summary>
    public VirtualNode? Find(string path) =>
        IsScratch(path) ? _scratch.GetValueOrDefault(path) : _shared.Find(path);

    /// <summary>The open file behind a descriptor, or null.</summary>
    public OpenFile? Get(int fd) => fd >= 0 && fd < _table.Count ? _table[fd] : null;

    /// <summary>Opens a path; returns the new descriptor or a negative errno.</summary>
    public int Open(string path, int flags)
    {
        var node = Find(path);
        var wantsWrite = (flags & OpenFlags.AccessMode) != OpenFlags.ReadOnly || (flags & (OpenFlags.Create | OpenFlags.Truncate)) != 0;
        if (node is null)
        {
            if ((flags & OpenFlags.Create) == 0)
            {
                return -Errno.NoEntry;
            }
            if (!IsScratch(path))
            {
                return -Errno.ReadOnlyFileSystem;
            }
            var parent = Find(VirtualFileSystem.ParentOf(path));
            if (parent is null)
            {
                return -Errno.NoEntry;
            }
            if (parent.Kind != VirtualNodeKind.Directory)
            {
                return -Errno.NotDirectory;
            }
            node = VirtualNode.NewScratchFile(path, _shared.NextInode());
            _scratch[path] = node;
            parent.Children.Add(VirtualFileSystem.NameOf(path));
        }
        else if ((flags & (OpenFlags.Create | OpenFlags.Exclusive)) == (OpenFlags.Create | OpenFlags.Exclusive))
        {
            return -Errno.Exists;
        }

        if (node.Kind == VirtualNodeKind.Directory && wantsWrite)
        {
            return -Errno.IsDirectory;
        }
        if ((flags & OpenFlags.Directory) != 0 && node.Kind != VirtualNodeKind.Directory)
        {
            return -Errno.NotDirectory;
        }
        if (wantsWrite && node.Kind == VirtualNodeKind.File && !node.Writable)
        {
            return -Errno.ReadOnlyFileSystem;
        }
        if (node.Kind == VirtualNodeKind.File && node.Writable && (flags & OpenFlags.Truncate) != 0)
        {
            SetLength(node, 0);
        }
        return Allocate(new OpenFile(node, flags), 0);
    }

    /// <summary>Closes a descriptor; returns an errno.</summary>
    public int Close(int fd)
    {
        if (Get(fd) is null)
        {
            return Errno.BadFileDescriptor;
        }
        _table[fd] = null;
        return Errno.Success;
    }

    /// <summary>Duplicates a descriptor onto the lowest free number at or above <paramref name="lowest"/>.</summary>
    public int Duplicate(int fd, int lowest)
    {
        var file = Get(fd);
        if (file is null)
        {
            return -Errno.BadFileDescriptor;
        }
        // A duplicate shares the open file description, position included (POSIX), so share the object.
        return Allocate(file, lowest);
    }

    /// <summary>Reads at the file's position (or at <paramref name="offset"/> without moving it).</summary>
    public int Read(OpenFile file, Span<byte> destination, long? offset)
    {
        if (!file.CanRead)
        {
            return -Errno.BadFileDescriptor;
        }
        switch (file.Node.Kind)
        {
            case VirtualNodeKind.Directory:
                return -Errno.IsDirectory;
            case VirtualNodeKind.Device:
                return file.Node.Device switch
                {
                    DeviceKind.HostChannel => _devices.ExchangeWithHost(destination),
                    DeviceKind.StandardInput or DeviceKind.Null => 0,
                    _ => -Errno.BadFileDescriptor,
                };
        }

        var content = file.Node.Content;
        var position = offset ?? file.Position;
        if (position >= content.Length)
        {
            return 0;
        }
        var count = (int)Math.Min(destination.Length, content.Length - position);
        content.Slice((int)position, count).CopyTo(destination);
        if (offset is null)
        {
            file.Position += count;
        }
        return count;
    }

    /// <summary>Writes at the file's position (or at <paramref name="offset"/> without moving it).</summary>
    public int Write(OpenFile file, ReadOnlySpan<byte> source, long? offset)
    {
        if (!file.CanWrite)
        {
            return -Errno.BadFileDescriptor;
        }
        var node = file.Node;
        if (node.Kind == VirtualNodeKind.Device)
        {
            switch (node.Device)
            {
                case DeviceKind.StandardOutput:
                case DeviceKind.StandardError:
                    _devices.WriteOutput(node.Device, source);
                    return source.Length;
                case DeviceKind.Null:
                    return source.Length;
                default:
                    return -Errno.BadFileDescriptor;
            }
        }
        if (node.Kind != VirtualNodeKind.File || !node.Writable)
        {
            return -Errno.ReadOnlyFileSystem;
        }

        var position = (file.Flags & OpenFlags.Append) != 0 ? node.ScratchLength : offset ?? file.Position;
        var end = position + source.Length;
        if (end > node.ScratchLength)
        {
            var error = SetLength(node, end);
            if (error != Errno.Success)
            {
                return -error;
            }
        }
        source.CopyTo(node.ScratchBuffer.AsSpan((int)position));
        if (offset is null)
        {
            file.Position = end;
        }
        return source.Length;
    }

    /// <summary>Moves a file's position; returns an errno.</summary>
    public int Seek(OpenFile file, long offset, int whence, out long newPosition)
    {
        newPosition = 0;
        if (file.Node.Kind == VirtualNodeKind.Device)
        {
            // The host channel accepts pread at offset 0; the console cannot seek.
            return file.Node.Device == DeviceKind.HostChannel ? Errno.Success : Errno.IllegalSeek;
        }
        var origin = whence switch
        {
            0 => 0,
            1 => file.Position,
            2 => file.Node.Length,
            _ => -1,
        };
        if (origin < 0 || origin + offset < 0)
        {
            return Errno.Invalid;
        }
        file.Position = newPosition = origin + offset;
        return Errno.Success;
    }

    /// <summary>Sets the length of a writable file.</summary>
    public int Truncate(OpenFile file, long length)
    {
        if (length < 0)
        {
            return Errno.Invalid;
        }
        if (!file.CanWrite || !file.Node.Writable || file.Node.Kind != VirtualNodeKind.File)
        {
            return file.Node.Writable ? Errno.BadFileDescriptor : Errno.ReadOnlyFileSystem;
        }
        return SetLength(file.Node, length);
    }

    /// <summary>Changes the current directory.</summary>
    public int ChangeDirectory(string path)
    {
        var node = Find(path);
        if (node is null)
        {
            return Errno.NoEntry;
        }
        if (node.Kind != VirtualNodeKind.Directory)
        {
            return Errno.NotDirectory;
        }
        CurrentDirectory = path;
        return Errno.Success;
    }

    /// <summary>The names a directory lists, with "." and ".." first (what <c>getdents64</c> returns).</summary>
    public IReadOnlyList<string> List(VirtualNode directory) => [".", "..", .. directory.Children];

    /// <summary>Captures the descriptor table (for pre-initialized images and sandbox snapshots).</summary>
    public IReadOnlyList<OpenFileState> CaptureTable()
    {
        var states = new List<OpenFileState>();
        for (var fd = 0; fd < _table.Count; fd++)
        {
            if (_table[fd] is { } file)
            {
                states.Add(new OpenFileState(fd, file.Node.Path, file.Flags, file.Position));
            }
        }
        return states;
    }

    /// <summary>Replaces the descriptor table with a captured one. Paths that no longer exist stay closed.</summary>
    public void RestoreTable(IReadOnlyList<OpenFileState> states)
    {
        _table.Clear();
        foreach (var state in states)
        {
            while (_table.Count <= state.Descriptor)
            {
                _table.Add(null);
            }
            if (Find(state.Path) is { } node)
            {
                _table[state.Descriptor] = new OpenFile(node, state.Flags) { Position = state.Position };
            }
        }
    }

    /// <summary>Captures the scratch area (for sandbox snapshots): every directory and file under it, with contents, parents first.</summary>
    public IReadOnlyList<ScratchEntry> CaptureScratch() =>
        _scratch.Values
            .Where(node => node.Path != VirtualFileSystem.ScratchRoot)
            // A parent's path is a prefix of its children's, so ordinal order puts parents first.
            .OrderBy(node => node.Path, StringComparer.Ordinal)
            .Select(node => new ScratchEntry(node.Path, node.Kind == VirtualNodeKind.Directory, node.Kind == VirtualNodeKind.File ? node.Content.ToArray() : []))
            .ToList();

    /// <summary>
    /// Replaces the scratch area with captured entries (parents first). Restored nodes get new inode numbers.
    /// Throws <see cref="InvalidDataException"/> for entries that cannot come from a capture, and an
    /// <see cref="IsolatedException"/> when the files exceed this sandbox's scratch quota.
    /// </summary>
    public void RestoreScratch(IReadOnlyList<ScratchEntry> entries)
    {
        var total = entries.Sum(entry => (long)entry.Content.Length);
        if (total > _scratchQuota)
        {
            throw new IsolatedException(
                $"The snapshot cannot be restored: its scratch files hold {total:N0} bytes, more than this host's limit of {_scratchQuota:N0} (IsolatedRuntimeHostOptions.MaxScratchBytes).");
        }
        var root = _scratch[VirtualFileSystem.ScratchRoot];
        root.Children.Clear();
        _scratch.Clear();
        _scratch[VirtualFileSystem.ScratchRoot] = root;
        _scratchBytes = 0;
        foreach (var entry in entries)
        {
            var path = entry.Path;
            if (!IsScratch(path) || path == VirtualFileSystem.ScratchRoot || VirtualFileSystem.Normalize("/", path) != path || _scratch.ContainsKey(path))
            {
                throw new InvalidDataException($"'{path}' is not a new path in the scratch area");
            }
            if (_scratch.GetValueOrDefault(VirtualFileSystem.ParentOf(path)) is not { Kind: VirtualNodeKind.Directory } parent)
            {
                throw new InvalidDataException($"the parent of '{path}' is not a directory before it");
            }
            VirtualNode node;
            if (entry.IsDirectory)
            {
                node = VirtualNode.NewDirectory(path, _shared.NextInode(), writable: true);
            }
            else
            {
                node = VirtualNode.NewScratchFile(path, _shared.NextInode());
                node.ScratchBuffer = entry.Content;
                node.ScratchLength = entry.Content.Length;
                _scratchBytes += entry.Content.Length;
            }
            _scratch[path] = node;
            parent.Children.Add(VirtualFileSystem.NameOf(path));
        }
    }

    /// <summary>Creates a directory in the scratch area.</summary>
    public int MakeDirectory(string path)
    {
        if (Find(path) is not null)
        {
            return Errno.Exists;
        }
        if (!IsScratch(path))
        {
            return Errno.ReadOnlyFileSystem;
        }
        var parent = Find(VirtualFileSystem.ParentOf(path));
        if (parent is null)
        {
            return Errno.NoEntry;
        }
        if (parent.Kind != VirtualNodeKind.Directory)
        {
            return Errno.NotDirectory;
        }
        _scratch[path] = VirtualNode.NewDirectory(path, _shared.NextInode(), writable: true);
        parent.Children.Add(VirtualFileSystem.NameOf(path));
        return Errno.Success;
    }

    /// <summary>Removes a file, or with <paramref name="directory"/> an empty directory, from the scratch area.</summary>
    public int Remove(string path, bool directory)
    {
        var node = Find(path);
        if (node is null)
        {
            return Errno.NoEntry;
        }
        if (!node.Writable || path == VirtualFileSystem.ScratchRoot)
        {
            return Errno.ReadOnlyFileSystem;
        }
        if (directory != (node.Kind == VirtualNodeKind.Directory))
        {
            return directory ? Errno.NotDirectory : Errno.IsDirectory;
        }
        if (directory && node.Children.Count > 0)
        {
            return Errno.NotEmpty;
        }
        if (node.Kind == VirtualNodeKind.File)
        {
            _scratchBytes -= node.ScratchBuffer.Length;
        }
        _scratch.Remove(path);
        Find(VirtualFileSystem.ParentOf(path))?.Children.Remove(VirtualFileSystem.NameOf(path));
        return Errno.Success;
    }

    /// <summary>Renames a file within the scratch area.</summary>
    public int Rename(string from, string to)
    {
        var node = Find(from);
        if (node is null)
        {
            return Errno.NoEntry;
        }
        if (!node.Writable || !IsScratch(to) || from == VirtualFileSystem.ScratchRoot)
        {
            return Errno.ReadOnlyFileSystem;
        }
        if (node.Kind != VirtualNodeKind.File)
        {
            return Errno.NotPermitted;
        }
        if (Find(VirtualFileSystem.ParentOf(to)) is not { Kind: VirtualNodeKind.Directory } parent)
        {
            return Errno.NoEntry;
        }
        if (Find(to) is { } existing)
        {
            var removed = Remove(to, existing.Kind == VirtualNodeKind.Directory);
            if (removed != Errno.Success)
            {
                return removed;
            }
        }
        var moved = VirtualNode.NewScratchFile(to, node.Inode);
        moved.ScratchBuffer = node.ScratchBuffer;
        moved.ScratchLength = node.ScratchLength;
        _scratch.Remove(from);
        Find(VirtualFileSystem.ParentOf(from))?.Children.Remove(VirtualFileSystem.NameOf(from));
        _scratch[to] = moved;
        parent.Children.Add(VirtualFileSystem.NameOf(to));
        return Errno.Success;
    }

    private int SetLength(VirtualNode node, long length)
    {
        if (length > int.MaxValue)
        {
            return Errno.Overflow;
        }
        if (length > node.ScratchBuffer.Length)
        {
            var capacity = (int)Math.Min(int.MaxValue, Math.Max(length, node.ScratchBuffer.Length * 2L));
            if (_scratchBytes - node.ScratchBuffer.Length + capacity > _scratchQuota)
            {
                capacity = (int)length;
                if (_scratchBytes - node.ScratchBuffer.Length + capacity > _scratchQuota)
                {
                    return 51; // ENOSPC: the scratch quota is spent.
                }
            }
            var grown = new byte[capacity];
            node.ScratchBuffer.AsSpan(0, (int)node.ScratchLength).CopyTo(grown);
            _scratchBytes += capacity - node.ScratchBuffer.Length;
            node.ScratchBuffer = grown;
        }
        else if (length < node.ScratchLength)
        {
            node.ScratchBuffer.AsSpan((int)length, (int)(node.ScratchLength - length)).Clear();
        }
        node.ScratchLength = length;
        return Errno.Success;
    }

    private int Allocate(OpenFile file, int lowest)
    {
        for (var fd = Math.Max(lowest, 0); fd < _table.Count; fd++)
        {
            if (_table[fd] is null)
            {
                _table[fd] = file;
                return fd;
            }
        }
        if (_table.Count >= MaxOpenFiles)
        {
            return -Errno.TooManyFiles;
        }
        while (_table.Count < lowest)
        {
            _table.Add(null);
        }
        _table.Add(file);
        return _table.Count - 1;
    }

    private static bool IsScratch(string path) =>
        path == VirtualFileSystem.ScratchRoot || path.StartsWith(VirtualFileSystem.ScratchRoot + "/", StringComparison.Ordinal);
}
