using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using Wasmtime;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// Takes a <see cref="SandboxSnapshot"/> of a sandbox between calls, and applies one to a sandbox that
/// was just instantiated from the same image. Only the pages that differ from the image travel: the page
/// map names the pages the sandbox wrote (without faulting in the others), and those are compared with the
/// image's; without a page map every page is compared.
/// </summary>
internal static unsafe class SandboxSnapshotter
{
    /// <summary>
    /// Captures <paramref name="sandbox"/>'s state. It must be between calls (nothing of the guest on the
    /// stack), which the owner's serialization of calls guarantees.
    /// </summary>
    /// <param name="sandbox">The sandbox.</param>
    /// <param name="pageSize">The granularity of the comparison (a power of two from 1 KiB to 64 KiB).</param>
    /// <param name="usePageMap">False to compare every page even where the page map works (to check it).</param>
    public static SandboxSnapshot Capture(Sandbox sandbox, int pageSize = SandboxSnapshot.DefaultPageSize, bool usePageMap = true)
    {
        sandbox.ThrowIfUnusable();
        var image = sandbox.Image;
        var baseline = image.Baseline;
        var memory = sandbox.Exports.Memory;
        var length = memory.GetLength();
        var pointer = (byte*)memory.GetPointer();
        if (length < baseline.Length || length % WasmModuleRewriter.PageSize != 0)
        {
            throw new IsolatedException($"The sandbox's memory ({length:N0} bytes) cannot be described against its image ({baseline.Length:N0} bytes).");
        }

        var candidates = PagesThatMayDiffer(sandbox, pointer, length, pageSize, usePageMap);
        // First find the pages and chunks that differ (reading only), then store exactly those chunks: a
        // buffer sized by the candidates would be far too large without a page map.
        var chunkSize = pageSize / SandboxSnapshot.ChunksPerPage;
        var changed = new List<int>();
        var masks = new List<ulong>();
        var chunks = 0;
        foreach (var page in candidates)
        {
            var offset = (long)page * pageSize;
            var current = new ReadOnlySpan<byte>(pointer + offset, pageSize);
            var mask = offset + pageSize <= baseline.Length
                ? ChangedChunks(current, baseline.Span(offset, pageSize), chunkSize)
                // Memory the sandbox grew starts as zeros.
                : ChangedChunks(current, chunkSize);
            if (mask != 0)
            {
                changed.Add(page);
                masks.Add(mask);
                chunks += BitOperations.PopCount(mask);
            }
        }
        var dataLength = checked(chunks * chunkSize);
        var data = ArrayPool<byte>.Shared.Rent(Math.Max(dataLength, 1));
        var rawMasks = new ulong[changed.Count];
        var position = 0;
        for (var i = 0; i < changed.Count; i++)
        {
            var offset = (long)changed[i] * pageSize;
            var current = new ReadOnlySpan<byte>(pointer + offset, pageSize);
            var original = offset + pageSize <= baseline.Length ? baseline.Span(offset, pageSize) : default;
            for (var mask = masks[i]; mask != 0; mask &= mask - 1)
            {
                var index = BitOperations.TrailingZeroCount(mask);
                var chunk = index * chunkSize;
                var target = data.AsSpan(position, chunkSize);
                if (original.IsEmpty)
                {
                    current.Slice(chunk, chunkSize).CopyTo(target);
                }
                else
                {
                    // The difference, whose unchanged bytes are zeros, unless the chunk itself has more zeros: where
                    // the sandbox reused memory for other data, the difference is as random as the image's old bytes.
                    Xor(current.Slice(chunk, chunkSize), original.Slice(chunk, chunkSize), target);
                    if (current.Slice(chunk, chunkSize).Count((byte)0) > target.Count((byte)0))
                    {
                        current.Slice(chunk, chunkSize).CopyTo(target);
                        rawMasks[i] |= 1UL << index;
                    }
                }
                position += chunkSize;
            }
        }

        var globals = CaptureGlobals(sandbox);
        var hostState = CaptureHostState(sandbox);
        return new SandboxSnapshot(SnapshotIdentity.Of(image), length, pageSize, [.. changed], [.. masks], rawMasks, data.AsMemory(0, dataLength), globals, hostState, rented: data);
    }

    /// <summary>
    /// The pages (of <paramref name="pageSize"/>) of the sandbox's memory at <paramref name="pointer"/> that may
    /// differ from its image, ascending: those the page map shows written, or every page without a page map.
    /// </summary>
    internal static IEnumerable<int> PagesThatMayDiffer(Sandbox sandbox, byte* pointer, long length, int pageSize, bool usePageMap = true)
    {
        var written = usePageMap && sandbox.Image.Baseline.PageMapWorks ? PageMap.FindWrittenPages((nint)pointer, length, pageSize) : null;
        return written is null
            ? Enumerable.Range(0, (int)(length / pageSize))
            // A sandbox started from a warm-start template differs from the image where the template did,
            // also on pages it never wrote itself (those are mapped from the template's file).
            : sandbox.Template is { } template ? MergeAscending(written, template.PagesAt(pageSize)) : written;
    }

    /// <summary>The union of two ascending sequences, ascending, without duplicates.</summary>
    private static IEnumerable<int> MergeAscending(IEnumerable<int> left, IEnumerable<int> right)
    {
        using var l = left.GetEnumerator();
        using var r = right.GetEnumerator();
        var hasLeft = l.MoveNext();
        var hasRight = r.MoveNext();
        while (hasLeft || hasRight)
        {
            if (hasLeft && (!hasRight || l.Current < r.Current))
            {
                yield return l.Current;
                hasLeft = l.MoveNext();
            }
            else if (hasRight && (!hasLeft || r.Current < l.Current))
            {
                yield return r.Current;
                hasRight = r.MoveNext();
            }
            else
            {
                yield return l.Current;
                hasLeft = l.MoveNext();
                hasRight = r.MoveNext();
            }
        }
    }

    /// <summary>The values of the sandbox's mutable globals, in the image's order.</summary>
    internal static List<SnapshotGlobal> CaptureGlobals(Sandbox sandbox)
    {
        var baseline = sandbox.Image.Baseline;
        var globals = new List<SnapshotGlobal>(baseline.MutableGlobals.Count);
        foreach (var (index, name, type) in baseline.MutableGlobals)
        {
            var global = sandbox.Instance.GetGlobal(name) ?? throw new IsolatedException($"The sandbox has no global {name}: it is not an instance of its image.");
            globals.Add(new SnapshotGlobal(index, type, WasmGlobalBits.From(global.GetValue())));
        }
        return globals;
    }

    /// <summary>The host-side state of the sandbox: clock, event-loop work, files.</summary>
    internal static SnapshotHostState CaptureHostState(Sandbox sandbox)
    {
        var now = sandbox.MonotonicNowMs;
        return new SnapshotHostState(
            now,
            sandbox.TimerDueMs - now,
            sandbox.BackgroundWorkPending,
            sandbox.Files.CurrentDirectory,
            sandbox.Files.CaptureTable(),
            sandbox.Files.CaptureScratch());
    }

    /// <summary>
    /// Makes <paramref name="sandbox"/>, a fresh instance of the snapshot's image on which nothing has run,
    /// the sandbox the snapshot was taken of: grows its memory, writes the changed pages, sets the globals,
    /// and restores its files, timer and clock. The dispatcher and mailbox stay the image's.
    /// </summary>
    /// <param name="sandbox">The fresh sandbox.</param>
    /// <param name="snapshot">The snapshot.</param>
    /// <param name="useKernelWriter">False to copy the pages here even where the kernel could (to check that way).</param>
    public static void Apply(Sandbox sandbox, SandboxSnapshot snapshot, bool useKernelWriter = true)
    {
        var image = sandbox.Image;
        snapshot.Identity.EnsureCompatibleWith(image);
        var baseline = image.Baseline;
        var memory = sandbox.Exports.Memory;
        var length = memory.GetLength();
        if (length != baseline.Length)
        {
            throw new InvalidOperationException("A snapshot can only be applied to a sandbox just instantiated from its image.");
        }
        if (snapshot.MemoryBytes < length)
        {
            throw Invalid($"its memory ({snapshot.MemoryBytes:N0} bytes) is smaller than its image's ({length:N0} bytes)");
        }
        if (snapshot.MemoryBytes > image.Limits.MaxMemoryBytes)
        {
            throw new IsolatedException(
                $"The snapshot cannot be restored: the sandbox had {snapshot.MemoryBytes:N0} bytes of memory, more than this host's limit of {image.Limits.MaxMemoryBytes:N0} (IsolatedRuntimeHostOptions.MaxMemoryBytes).");
        }
        var chunkSize = snapshot.ChunkSize;
        var chunks = snapshot.ChunkMasks.Sum(mask => (long)BitOperations.PopCount(mask));
        if (snapshot.ChunkMasks.Length != snapshot.PageIndices.Length || snapshot.RawMasks.Length != snapshot.PageIndices.Length
            || snapshot.ChunkData.Length != chunks * chunkSize)
        {
            throw Invalid("its chunk data does not match its page list");
        }
        if (snapshot.MemoryBytes > length)
        {
            try
            {
                memory.Grow((snapshot.MemoryBytes - length) / WasmModuleRewriter.PageSize);
            }
            catch (WasmtimeException e)
            {
                throw new IsolatedException($"The snapshot cannot be restored: its memory of {snapshot.MemoryBytes:N0} bytes could not be allocated ({e.Message}).", e);
            }
        }

        var pointer = (byte*)memory.GetPointer();
        var pageSize = snapshot.PageSize;
        if (snapshot.PageIndices.Length > 0 && (long)(snapshot.PageIndices[^1] + 1) * pageSize > snapshot.MemoryBytes)
        {
            throw Invalid("a page lies past the end of its memory");
        }
        WritePages(pointer, baseline, snapshot, useKernelWriter);
        RestoreGlobals(sandbox, baseline, snapshot.Globals);
        ApplyHostState(sandbox, snapshot.HostState);
    }

    /// <summary>
    /// Writes the snapshot's changed pages into the sandbox's memory at <paramref name="pointer"/>. Each page is
    /// put together in a small staging buffer (the image's page with the changed chunks applied) and batches
    /// of them are written by the kernel in one system call (see <see cref="KernelMemoryWriter"/>): the
    /// sandbox's pages are never touched from here, which on this project's machines is what writing them
    /// cost most. Where the kernel refuses, the pages are populated and copied here.
    /// </summary>
    private static void WritePages(byte* pointer, ImageBaseline baseline, SandboxSnapshot snapshot, bool useKernelWriter)
    {
        var pageSize = snapshot.PageSize;
        var chunkSize = snapshot.ChunkSize;
        var pages = snapshot.PageIndices;
        var data = snapshot.ChunkData.Span;
        // Small enough to stay in the cache between putting a page together and the kernel copying it.
        var batchPages = Math.Max(1, StagingBytes / pageSize);
        var staging = ArrayPool<byte>.Shared.Rent(batchPages * pageSize);
        Span<KernelMemoryWriter.IoVector> runs = stackalloc KernelMemoryWriter.IoVector[batchPages];
        try
        {
            fixed (byte* stage = staging)
            {
                var position = 0;
                var batchStart = 0;
                var runCount = 0;
                for (var i = 0; i < pages.Length; i++)
                {
                    var offset = (long)pages[i] * pageSize;
                    var page = new Span<byte>(stage + ((long)(i - batchStart) * pageSize), pageSize);
                    // Pages lie wholly inside or past the image (its length is a multiple of 64 KiB); past it memory starts as zeros.
                    if (offset + pageSize <= baseline.Length)
                    {
                        baseline.Span(offset, pageSize).CopyTo(page);
                    }
                    else
                    {
                        page.Clear();
                    }
                    var raw = snapshot.RawMasks[i];
                    for (var mask = snapshot.ChunkMasks[i]; mask != 0; mask &= mask - 1)
                    {
                        var index = BitOperations.TrailingZeroCount(mask);
                        var chunk = page.Slice(index * chunkSize, chunkSize);
                        if ((raw & (1UL << index)) != 0)
                        {
                            data.Slice(position, chunkSize).CopyTo(chunk);
                        }
                        else
                        {
                            Xor(chunk, data.Slice(position, chunkSize), chunk);
                        }
                        position += chunkSize;
                    }
                    if (runCount > 0 && pages[i] == pages[i - 1] + 1)
                    {
                        runs[runCount - 1] = new KernelMemoryWriter.IoVector(runs[runCount - 1].Address, runs[runCount - 1].Length + (nuint)pageSize);
                    }
                    else
                    {
                        runs[runCount++] = new KernelMemoryWriter.IoVector((nint)(pointer + offset), (nuint)pageSize);
                    }
                    if (i + 1 - batchStart == batchPages || i + 1 == pages.Length)
                    {
                        var count = i + 1 - batchStart;
                        if (!useKernelWriter || !KernelMemoryWriter.TryWrite(stage, (long)count * pageSize, runs[..runCount]))
                        {
                            CopyPages(pointer, stage, pages.AsSpan(batchStart, count), pageSize);
                        }
                        batchStart = i + 1;
                        runCount = 0;
                    }
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(staging);
        }
    }

    /// <summary>The staging buffer's size for <see cref="WritePages"/>.</summary>
    private const int StagingBytes = 256 * 1024;

    /// <summary>Copies staged pages into place here: populating them first makes that one system call per run of pages instead of a fault per page.</summary>
    private static void CopyPages(byte* pointer, byte* stage, ReadOnlySpan<int> pages, int pageSize)
    {
        PagePrefaulter.PopulateForWriting(pointer, pages, pageSize);
        for (var i = 0; i < pages.Length; i++)
        {
            new ReadOnlySpan<byte>(stage + ((long)i * pageSize), pageSize).CopyTo(new Span<byte>(pointer + ((long)pages[i] * pageSize), pageSize));
        }
    }

    /// <summary>Gives <paramref name="sandbox"/> the captured host-side state (files, timer, clock).</summary>
    internal static void ApplyHostState(Sandbox sandbox, SnapshotHostState state)
    {
        try
        {
            sandbox.Files.RestoreScratch(state.Scratch);
        }
        catch (InvalidDataException e)
        {
            throw Invalid($"its scratch files are damaged ({e.Message})", e);
        }
        sandbox.Files.RestoreTable(state.OpenFiles);
        if (sandbox.Files.ChangeDirectory(state.CurrentDirectory) != FileSystem.Errno.Success)
        {
            throw Invalid($"its current directory {state.CurrentDirectory} does not exist");
        }
        sandbox.ContinueClockFrom(state.MonotonicMilliseconds);
        sandbox.TimerDueMs = state.TimerDueInMilliseconds is { } dueIn ? sandbox.MonotonicNowMs + dueIn : null;
        sandbox.BackgroundWorkPending = state.BackgroundWorkPending;
    }

    internal static void RestoreGlobals(Sandbox sandbox, ImageBaseline baseline, IReadOnlyList<SnapshotGlobal> values)
    {
        // The same image has the same globals: anything else means the snapshot is damaged.
        if (values.Count != baseline.MutableGlobals.Count)
        {
            throw Invalid($"it has {values.Count} globals where its image has {baseline.MutableGlobals.Count}");
        }
        for (var i = 0; i < values.Count; i++)
        {
            var (index, name, type) = baseline.MutableGlobals[i];
            var value = values[i];
            if (value.Index != index || value.Type != type)
            {
                throw Invalid($"its global {value.Index} ({value.Type}) is not its image's global {index} ({type})");
            }
            var global = sandbox.Instance.GetGlobal(name) ?? throw new IsolatedException($"The sandbox has no global {name}: it is not an instance of its image.");
            global.SetValue(WasmGlobalBits.To(type, value.Bits));
        }
    }


    /// <summary>Which chunks of <paramref name="current"/> differ from <paramref name="original"/> (bit c: chunk c).</summary>
    private static ulong ChangedChunks(ReadOnlySpan<byte> current, ReadOnlySpan<byte> original, int chunkSize)
    {
        if (current.SequenceEqual(original))
        {
            return 0;
        }
        var mask = 0UL;
        for (var c = 0; c < SandboxSnapshot.ChunksPerPage; c++)
        {
            if (!current.Slice(c * chunkSize, chunkSize).SequenceEqual(original.Slice(c * chunkSize, chunkSize)))
            {
                mask |= 1UL << c;
            }
        }
        return mask;
    }

    /// <summary>Which chunks of <paramref name="current"/> are not all zeros (bit c: chunk c).</summary>
    private static ulong ChangedChunks(ReadOnlySpan<byte> current, int chunkSize)
    {
        var mask = 0UL;
        for (var c = 0; c < SandboxSnapshot.ChunksPerPage; c++)
        {
            if (current.Slice(c * chunkSize, chunkSize).IndexOfAnyExcept((byte)0) >= 0)
            {
                mask |= 1UL << c;
            }
        }
        return mask;
    }

    /// <summary><paramref name="destination"/> = <paramref name="left"/> XOR <paramref name="right"/> (equal lengths; destination may be left).</summary>
    private static void Xor(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right, Span<byte> destination)
    {
        var l = MemoryMarshal.Cast<byte, Vector<byte>>(left);
        var r = MemoryMarshal.Cast<byte, Vector<byte>>(right);
        var d = MemoryMarshal.Cast<byte, Vector<byte>>(destination);
        for (var i = 0; i < d.Length; i++)
        {
            d[i] = l[i] ^ r[i];
        }
        for (var i = d.Length * Vector<byte>.Count; i < destination.Length; i++)
        {
            destination[i] = (byte)(left[i] ^ right[i]);
        }
    }

    private static IsolatedException Invalid(string problem, Exception? inner = null) =>
        new($"The snapshot cannot be restored: {problem}.", inner);
}
