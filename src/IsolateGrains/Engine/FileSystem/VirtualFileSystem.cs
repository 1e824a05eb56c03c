namespace IsolateGrains.Engine.FileSystem;

/// <summary>
/// The read-only part of a sandbox's file system, shared by every sandbox of one host: the BCL under
/// <c>/bcl</c>, the guest runtime under <c>/app</c>, and the devices under <c>/dev</c>. Nothing here maps
/// to the host's disk except the files the host itself chose to serve; each sandbox adds its own writable
/// scratch directory, <see cref="ScratchRoot"/>, on top (see <see cref="SandboxFileSystem"/>).
/// </summary>
internal sealed class VirtualFileSystem
{
    /// <summary>The only place a guest may create and write files; it is private to each sandbox.</summary>
    public const string ScratchRoot = "/tmp";

    /// <summary>The device through which the guest calls the host.</summary>
    public const string HostChannelPath = "/dev/host";

    private readonly Dictionary<string, VirtualNode> _nodes = new(StringComparer.Ordinal);
    private long _nextInode = 1;

    /// <summary>Creates a file system holding the root, <c>/dev</c> and the scratch mount point.</summary>
    public VirtualFileSystem()
    {
        AddDirectory("/");
        AddDirectory("/dev");
        AddDirectory(ScratchRoot);
        Add(VirtualNode.NewDevice("/dev/null", NextInode(), DeviceKind.Null));
        Add(VirtualNode.NewDevice("/dev/stdin", NextInode(), DeviceKind.StandardInput));
        Add(VirtualNode.NewDevice("/dev/stdout", NextInode(), DeviceKind.StandardOutput));
        Add(VirtualNode.NewDevice("/dev/stderr", NextInode(), DeviceKind.StandardError));
        Add(VirtualNode.NewDevice(HostChannelPath, NextInode(), DeviceKind.HostChannel));
    }

    /// <summary>Serves the host file <paramref name="hostPath"/> at <paramref name="path"/>, read lazily and only once.</summary>
    public void AddHostFile(string path, string hostPath)
    {
        var length = new FileInfo(hostPath).Length;
        AddParents(path);
        Add(VirtualNode.NewFile(path, NextInode(), length, () => File.ReadAllBytes(hostPath)));
    }

    /// <summary>Serves <paramref name="content"/> at <paramref name="path"/>.</summary>
    public void AddFile(string path, byte[] content)
    {
        AddParents(path);
        Add(VirtualNode.NewFile(path, NextInode(), content.Length, () => content));
    }

    /// <summary>The shared node at a normalized path, if any.</summary>
    public VirtualNode? Find(string path) => _nodes.GetValueOrDefault(path);

    /// <summary>A fresh inode number (scratch files take theirs from here too, so numbers never collide).</summary>
    public long NextInode() => Interlocked.Increment(ref _nextInode);

    /// <summary>
    /// Makes <paramref name="path"/> absolute against <paramref name="directory"/> and removes <c>.</c>,
    /// <c>..</c> and repeated separators. <c>..</c> never climbs above the root.
    /// </summary>
    public static string Normalize(string directory, string path)
    {
        var full = path.StartsWith('/') ? path : directory.TrimEnd('/') + "/" + path;
        var parts = new List<string>();
        foreach (var part in full.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
            {
                continue;
            }
            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }
                continue;
            }
            parts.Add(part);
        }
        return "/" + string.Join('/', parts);
    }

    /// <summary>The directory part of a normalized path.</summary>
    public static string ParentOf(string path)
    {
        var slash = path.LastIndexOf('/');
        return slash <= 0 ? "/" : path[..slash];
    }

    /// <summary>The last part of a normalized path.</summary>
    public static string NameOf(string path) => path[(path.LastIndexOf('/') + 1)..];

    private void AddDirectory(string path)
    {
        if (!_nodes.ContainsKey(path))
        {
            AddParents(path);
            Add(VirtualNode.NewDirectory(path, NextInode(), writable: false));
        }
    }

    private void AddParents(string path)
    {
        if (path != "/")
        {
            AddDirectory(ParentOf(path));
        }
    }

    private void Add(VirtualNode node)
    {
        _nodes[node.Path] = node;
        if (node.Path != "/")
        {
            _nodes[ParentOf(node.Path)].Children.Add(NameOf(node.Path));
        }
    }
}
