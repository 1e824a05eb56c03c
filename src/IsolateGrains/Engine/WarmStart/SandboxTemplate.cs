using IsolateGrains.Engine.Snapshots;
using Wasmtime;

namespace IsolateGrains.Engine.WarmStart;

/// <summary>
/// A sandbox state that new sandboxes start from instead of the bare image: the image plus the pages a
/// template sandbox changed while it prepared the methods the host's sandboxes run (their assemblies
/// loaded, runners and formatters built), its globals and host-side state. No user code ran in it, so
/// starting from it shares nothing of any other sandbox. On Linux the template's memory is mapped
/// copy-on-write from a <see cref="TemplateMemoryFile"/>; elsewhere its changed pages are copied.
/// </summary>
internal sealed unsafe class SandboxTemplate : IDisposable
{
    /// <summary>The most pages a first call may write for them to be made private up front in later sandboxes (4 MiB).</summary>
    private const int MaxHotPages = 1024;

    private readonly Lock _gate = new();
    private readonly TemplateMemoryFile? _file;
    private readonly byte[]? _pages;
    private readonly (int First, int Count)[] _runs;
    private FirstCallPages? _firstCallPages;
    private bool _disposed;

    private SandboxTemplate(SandboxImage image, long memoryBytes, int pageSize, int[] pageIndices, (int, int)[] runs,
        TemplateMemoryFile? file, byte[]? pages, List<SnapshotGlobal> globals, SnapshotHostState hostState, IReadOnlySet<ulong> methodKeys)
    {
        Image = image;
        MemoryBytes = memoryBytes;
        PageSize = pageSize;
        PageIndices = pageIndices;
        _runs = runs;
        _file = file;
        _pages = pages;
        Globals = globals;
        HostState = hostState;
        MethodKeys = methodKeys;
    }

    /// <summary>The image the template was made from (and new sandboxes must be instances of).</summary>
    public SandboxImage Image { get; }

    /// <summary>The template's memory size in bytes.</summary>
    public long MemoryBytes { get; }

    /// <summary>The size of the pages in <see cref="PageIndices"/> (the system page size).</summary>
    public int PageSize { get; }

    /// <summary>The pages that differ from the image, ascending.</summary>
    public int[] PageIndices { get; }

    /// <summary>The keys of the methods prepared in the template (a sandbox started from it has resolved them).</summary>
    public IReadOnlySet<ulong> MethodKeys { get; }

    /// <summary>True when new sandboxes map the pages copy-on-write rather than copying them.</summary>
    public bool IsMapped => _file is not null;

    private List<SnapshotGlobal> Globals { get; }

    private SnapshotHostState HostState { get; }

    /// <summary>
    /// Captures <paramref name="sandbox"/> (between calls, its garbage collected) as a template whose
    /// prepared methods are <paramref name="methodKeys"/>.
    /// </summary>
    public static SandboxTemplate Capture(Sandbox sandbox, IReadOnlyCollection<ulong> methodKeys)
    {
        sandbox.ThrowIfUnusable();
        var baseline = sandbox.Image.Baseline;
        var memory = sandbox.Exports.Memory;
        var length = memory.GetLength();
        var pointer = (byte*)memory.GetPointer();
        var pageSize = PageMap.SystemPageSize;
        var changed = new List<int>();
        // Built on an earlier template, the sandbox also differs from the image where that template did.
        foreach (var page in SandboxSnapshotter.PagesThatMayDiffer(sandbox, pointer, length, pageSize))
        {
            var offset = (long)page * pageSize;
            var current = new ReadOnlySpan<byte>(pointer + offset, pageSize);
            var differs = offset + pageSize <= baseline.Length
                ? !current.SequenceEqual(baseline.Span(offset, pageSize))
                // Memory the sandbox grew starts as zeros in a new sandbox.
                : current.IndexOfAnyExcept((byte)0) >= 0;
            if (differs)
            {
                changed.Add(page);
            }
        }
        var runs = ToRuns(changed);

        // The file holds the whole memory, so that a new sandbox maps it in one piece: one mapping per
        // sandbox, where mapping each run of changed pages would soon exhaust the process's map count.
        // Zero pages stay holes, so the file costs the memory's non-zero pages, once per host.
        var file = TemplateMemoryFile.TryCreate(length);
        byte[]? pages = null;
        try
        {
            if (file is not null)
            {
                WriteNonZeroPages(file, pointer, length, pageSize);
            }
            else
            {
                pages = new byte[checked(changed.Count * pageSize)];
                for (var i = 0; i < changed.Count; i++)
                {
                    new ReadOnlySpan<byte>(pointer + ((long)changed[i] * pageSize), pageSize).CopyTo(pages.AsSpan(i * pageSize));
                }
            }
        }
        catch
        {
            file?.Dispose();
            throw;
        }
        return new SandboxTemplate(sandbox.Image, length, pageSize, [.. changed], runs, file, pages,
            SandboxSnapshotter.CaptureGlobals(sandbox), SandboxSnapshotter.CaptureHostState(sandbox), methodKeys.ToHashSet());
    }

    /// <summary>
    /// Makes <paramref name="sandbox"/>, a fresh instance of the image on which nothing has run, a copy of
    /// the template. Returns false, leaving the sandbox untouched, when the template was replaced
    /// meanwhile or does not fit the sandbox's memory limit.
    /// </summary>
    public bool TryApplyTo(Sandbox sandbox)
    {
        if (sandbox.Image != Image || sandbox.HasRun || sandbox.Template is not null)
        {
            throw new InvalidOperationException("A template can only be applied to a fresh sandbox of its image.");
        }
        lock (_gate)
        {
            if (_disposed || MemoryBytes > sandbox.Limits.MaxMemoryBytes)
            {
                return false;
            }
            var memory = sandbox.Exports.Memory;
            var length = memory.GetLength();
            if (MemoryBytes > length)
            {
                try
                {
                    memory.Grow((MemoryBytes - length) / WasmModuleRewriter.PageSize);
                }
                catch (WasmtimeException)
                {
                    return false;
                }
            }
            var pointer = (byte*)memory.GetPointer();
            if (_file is not null && _file.TryMap(pointer, 0, MemoryBytes))
            {
                // The pages a first call writes, made private in one system call per run instead of one
                // fault each (faults are what a first call spends most of its time on).
                if (Volatile.Read(ref _firstCallPages) is { } pages)
                {
                    PagePrefaulter.PopulateForWriting(pointer, pages.Written, PageSize);
                    PagePrefaulter.PopulateForReading(pointer, pages.Read, PageSize);
                }
            }
            else
            {
                var copied = 0;
                foreach (var (first, count) in _runs)
                {
                    var offset = (long)first * PageSize;
                    var target = new Span<byte>(pointer + offset, checked(count * PageSize));
                    if (_file is not null)
                    {
                        _file.Read(offset, target);
                    }
                    else
                    {
                        _pages.AsSpan(copied * PageSize, target.Length).CopyTo(target);
                    }
                    copied += count;
                }
            }
        }
        SandboxSnapshotter.RestoreGlobals(sandbox, sandbox.Image.Baseline, Globals);
        SandboxSnapshotter.ApplyHostState(sandbox, HostState);
        sandbox.KnownMethodKeys.UnionWith(MethodKeys);
        sandbox.Template = this;
        return true;
    }

    /// <summary>
    /// Learns, from the first sandbox started from this template that finished its first call, which pages
    /// a first call writes; later sandboxes have those made private up front.
    /// </summary>
    public void ObserveFirstCall(Sandbox sandbox)
    {
        if (Volatile.Read(ref _firstCallPages) is not null || !sandbox.Image.Baseline.PageMapWorks)
        {
            return;
        }
        var memory = sandbox.Exports.Memory;
        // A first call that wrote a great deal (a large allocation, say) is no guide to the next one.
        if (PageMap.FindPresentPages(memory.GetPointer(), Math.Min(memory.GetLength(), MemoryBytes)) is { } present
            && present.Written.Count <= MaxHotPages)
        {
            Interlocked.CompareExchange(ref _firstCallPages, new FirstCallPages([.. present.Written], [.. present.ReadOnly]), null);
        }
    }

    /// <summary>
    /// The template's changed pages in units of <paramref name="pageSize"/> (a power of two), ascending:
    /// a snapshot of a sandbox started from the template must consider them even where the sandbox never
    /// wrote them (the page map shows them as mapped from a file, like the image's).
    /// </summary>
    public IEnumerable<int> PagesAt(int pageSize)
    {
        var last = -1;
        foreach (var page in PageIndices)
        {
            var start = (long)page * PageSize;
            for (var unit = (int)(start / pageSize); (long)unit * pageSize < start + PageSize; unit++)
            {
                if (unit != last)
                {
                    last = unit;
                    yield return unit;
                }
            }
        }
    }

    /// <summary>Closes the memory file; sandboxes that mapped it keep their pages.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _file?.Dispose();
        }
    }

    private static void WriteNonZeroPages(TemplateMemoryFile file, byte* memory, long length, int pageSize)
    {
        for (var page = 0L; page * pageSize < length;)
        {
            if (new ReadOnlySpan<byte>(memory + (page * pageSize), pageSize).IndexOfAnyExcept((byte)0) < 0)
            {
                page++;
                continue;
            }
            var end = page + 1;
            while (end * pageSize < length && new ReadOnlySpan<byte>(memory + (end * pageSize), pageSize).IndexOfAnyExcept((byte)0) >= 0)
            {
                end++;
            }
            file.Write(page * pageSize, new ReadOnlySpan<byte>(memory + (page * pageSize), checked((int)((end - page) * pageSize))));
            page = end;
        }
    }

    private static (int, int)[] ToRuns(List<int> pages)
    {
        var runs = new List<(int, int)>();
        for (var i = 0; i < pages.Count;)
        {
            var end = i + 1;
            while (end < pages.Count && pages[end] == pages[end - 1] + 1)
            {
                end++;
            }
            runs.Add((pages[i], end - i));
            i = end;
        }
        return [.. runs];
    }

    /// <summary>The system pages a first call wrote and only read, learned once per template.</summary>
    private sealed record FirstCallPages(int[] Written, int[] Read);
}
