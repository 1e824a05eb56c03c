using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using IsolateGrains.Engine.FileSystem;
using ZstdSharp;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// A sandbox's whole state, relative to the image it was instantiated from: the memory pages that differ
/// from the image, the mutable globals, and the host-side state (clock, event loop, files). Restoring it
/// into a new instance of the same image gives back the same sandbox.
/// </summary>
/// <remarks>
/// <para>The binary format (little-endian; strings are UTF-8 with a 7-bit-encoded length, as <see cref="BinaryWriter"/> writes them):</para>
/// <code>
/// header   "IGSNAP" u16 version=3
///          string imageKey       the module cache key of the image (what went into it)
///          string imageHash      XxHash128 of the image's memory (its bytes: builds of one key differ)
///          string runtimeVersion the Mono runtime pack version
///          i64 memoryBytes       i32 pageSize   i32 changedPages
///          i64 bodyLength (uncompressed)        i32 compressedLength (of everything up to the trailer)
/// frames   u8 frameCount, frameCount × (i32 compressed length, i32 body length), then the frames: the body cut
///          in consecutive parts, each compressed on its own, so that parts compress and decompress in parallel
///          (version 2: the body as one zstd frame, no table)
/// body     the concatenation of the frames' contents:
///          i32 globalCount, then per global: i32 index, u8 value type, i64 bits
///          changedPages × i32 page index (ascending)
///          changedPages × u64 chunk mask: bit c set when chunk c (pageSize / 64 bytes) of the page changed
///          changedPages × u64 raw mask: bit c set when changed chunk c is stored as it is, not XOR the image
///          for each page, for each set bit of its chunk mask: the chunk as it is (raw bit set), or the chunk XOR
///                         the image's bytes there (zeros past the image's end, so there the chunk itself)
///          f64 monotonic ms, u8 flags (1 timer pending, 2 background work pending), [f64 timer due in ms]
///          string current directory
///          i32 count, per descriptor: i32 fd, string path, i32 flags, i64 position
///          i32 count, per scratch node (parents first): string path, u8 kind (0 directory, 1 file), [i32 length, bytes]
/// trailer  u64 XxHash64 of everything before it
/// </code>
/// <para>
/// Everything needed to refuse a snapshot (image, runtime, sizes) is in the uncompressed header, so
/// <see cref="ReadHeader"/> can describe one without decompressing it.
/// </para>
/// </remarks>
internal sealed class SandboxSnapshot : IDisposable
{
    /// <summary>
    /// The format version this code writes (3: the body in several zstd frames). It also reads version 2 (one frame;
    /// chunks may be stored as they are, not only XOR the image), so snapshots saved before stay restorable.
    /// </summary>
    public const ushort FormatVersion = 3;

    /// <summary>The oldest format version this code reads.</summary>
    public const ushort OldestReadableVersion = 2;

    // Bodies from this size on are cut into one frame per core (up to MaxFrames), compressed and decompressed in
    // parallel: on two cores, decompressing a 930 KB body took ~2 ms of a ~5 ms restore.
    private const int ParallelBodyLength = 128 * 1024;
    private const int MaxFrames = 8;

    /// <summary>
    /// The page size snapshots are taken in: the granularity of copy-on-write and of the page map. Measured on a
    /// sandbox that ran a few calls: 64 KiB pages compressed to the same size (84 KB) but meant 4 times the
    /// bytes to compare, copy and write back (a restore took 75 ms instead of 22 ms before prefaulting).
    /// </summary>
    public const int DefaultPageSize = 4096;

    private static ReadOnlySpan<byte> Magic => "IGSNAP"u8;

    // Chunk data lives in a pooled array: a fresh array of megabytes costs a page fault per 4 KiB on first
    // touch (and pushes the host's GC into full collections), which would dominate a capture or restore.
    private byte[]? _rented;

    /// <summary>A page is stored as the chunks of it that changed; a 64-bit mask says which.</summary>
    public const int ChunksPerPage = 64;

    /// <summary>Creates a snapshot; it takes ownership of <paramref name="rented"/> (from the shared array pool), which holds <paramref name="chunkData"/>.</summary>
    public SandboxSnapshot(
        SnapshotIdentity identity,
        long memoryBytes,
        int pageSize,
        int[] pageIndices,
        ulong[] chunkMasks,
        ulong[] rawMasks,
        ReadOnlyMemory<byte> chunkData,
        IReadOnlyList<SnapshotGlobal> globals,
        SnapshotHostState hostState,
        byte[]? rented)
    {
        Identity = identity;
        MemoryBytes = memoryBytes;
        PageSize = pageSize;
        PageIndices = pageIndices;
        ChunkMasks = chunkMasks;
        RawMasks = rawMasks;
        ChunkData = chunkData;
        Globals = globals;
        HostState = hostState;
        _rented = rented;
    }

    /// <summary>The image and runtime the snapshot was taken under.</summary>
    public SnapshotIdentity Identity { get; }

    /// <summary>The sandbox's memory size in bytes.</summary>
    public long MemoryBytes { get; }

    /// <summary>The size of the pages <see cref="PageIndices"/> count in.</summary>
    public int PageSize { get; }

    /// <summary>The indices of the pages that differ from the image, ascending.</summary>
    public int[] PageIndices { get; }

    /// <summary>For each page of <see cref="PageIndices"/>, which of its chunks changed (bit c: chunk c); never zero.</summary>
    public ulong[] ChunkMasks { get; }

    /// <summary>
    /// For each page of <see cref="PageIndices"/>, which of its changed chunks are stored as they are rather than
    /// XOR the image's bytes (a subset of its <see cref="ChunkMasks"/> bit). Where the sandbox reused memory the
    /// image held other data in, the XOR is as random as the image's bytes, while the chunk itself is mostly
    /// zeros and small numbers: choosing per chunk made a snapshot's compressed chunks 310 KB instead of 678 KB.
    /// </summary>
    public ulong[] RawMasks { get; }

    /// <summary>
    /// The changed chunks, page by page and in chunk order: each chunk as it is (see <see cref="RawMasks"/>) or XOR
    /// the image's bytes there (the chunk itself past the image's end, where memory starts as zeros). Valid until
    /// the snapshot is disposed.
    /// </summary>
    /// <remarks>
    /// Storing chunks rather than pages matters for speed more than size: on a sandbox that ran a few calls only
    /// 7% of the bytes of its changed pages differed, and compressing whole pages took most of a capture.
    /// </remarks>
    public ReadOnlyMemory<byte> ChunkData { get; }

    /// <summary>The size of one chunk.</summary>
    public int ChunkSize => PageSize / ChunksPerPage;

    /// <summary>The values of the mutable globals.</summary>
    public IReadOnlyList<SnapshotGlobal> Globals { get; }

    /// <summary>The host-side state.</summary>
    public SnapshotHostState HostState { get; }

    /// <summary>Returns the chunk data's array to the pool.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _rented, null) is { } rented)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Encodes the snapshot (see the remarks for the format).</summary>
    public byte[] Encode()
    {
        var prefix = new MemoryStream(8 + (Globals.Count * 13) + (PageIndices.Length * 20));
        using (var writer = new BinaryWriter(prefix, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Globals.Count);
            foreach (var global in Globals)
            {
                writer.Write(global.Index);
                writer.Write((byte)global.Type);
                writer.Write(global.Bits);
            }
            foreach (var index in PageIndices)
            {
                writer.Write(index);
            }
            foreach (var mask in ChunkMasks)
            {
                writer.Write(mask);
            }
            foreach (var mask in RawMasks)
            {
                writer.Write(mask);
            }
        }
        var suffix = new MemoryStream();
        using (var writer = new BinaryWriter(suffix, Encoding.UTF8, leaveOpen: true))
        {
            WriteHostState(writer, HostState);
        }
        var bodyLength = checked((int)(prefix.Length + ChunkData.Length + suffix.Length));
        var header = new SnapshotHeader(Identity, MemoryBytes, PageSize, PageIndices.Length, bodyLength, CompressedLength: 0);

        // The body is put together in one pooled buffer and compressed in one call: compressing it as a stream
        // of three pieces took 7.3 ms instead of 4.2 ms (the stream copies its input into its window), far
        // more than copying the chunks here. Only the result is a new array.
        var body = ArrayPool<byte>.Shared.Rent(Math.Max(bodyLength, 1));
        var buffer = ArrayPool<byte>.Shared.Rent(Compressor.GetCompressBound(bodyLength) + (MaxFrames * Compressor.GetCompressBound(0)) + 4096 + sizeof(ulong));
        try
        {
            prefix.GetBuffer().AsSpan(0, (int)prefix.Length).CopyTo(body);
            ChunkData.Span.CopyTo(body.AsSpan((int)prefix.Length));
            suffix.GetBuffer().AsSpan(0, (int)suffix.Length).CopyTo(body.AsSpan((int)(prefix.Length + ChunkData.Length)));

            var output = new MemoryStream(buffer, 0, buffer.Length, writable: true, publiclyVisible: true);
            using (var writer = new BinaryWriter(output, Encoding.UTF8, leaveOpen: true))
            {
                WriteHeader(writer, header);
            }
            var bodyStart = (int)output.Position;
            var compressedLength = CompressFrames(body, bodyLength, buffer, bodyStart);
            var position = bodyStart + compressedLength;
            // The compressed length is the header's last field: fill it in now that it is known.
            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(bodyStart - sizeof(int)), compressedLength);
            BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(position), XxHash64.HashToUInt64(buffer.AsSpan(0, position)));
            return buffer.AsSpan(0, position + sizeof(ulong)).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            ArrayPool<byte>.Shared.Return(body);
        }
    }

    /// <summary>
    /// Writes the frame table and the frames of the first <paramref name="bodyLength"/> bytes of <paramref name="body"/> into <paramref name="output"/> from
    /// <paramref name="start"/>; returns the bytes written. Frames are compressed in parallel, each into its own
    /// stretch of the buffer, then moved together.
    /// </summary>
    private static int CompressFrames(byte[] body, int bodyLength, byte[] output, int start)
    {
        var frames = bodyLength >= ParallelBodyLength ? Math.Clamp(Environment.ProcessorCount, 1, MaxFrames) : 1;
        var parts = new (int Start, int Length)[frames];
        for (var i = 0; i < frames; i++)
        {
            var from = (int)((long)bodyLength * i / frames);
            parts[i] = (from, (int)((long)bodyLength * (i + 1) / frames) - from);
        }
        var table = 1 + (frames * 2 * sizeof(int));
        var slots = new int[frames];
        var slot = start + table;
        for (var i = 0; i < frames; i++)
        {
            slots[i] = slot;
            slot += Compressor.GetCompressBound(parts[i].Length);
        }
        var compressed = new int[frames];
        Parallel.For(0, frames, i =>
        {
            var compressor = ZstdContexts.RentCompressor();
            try
            {
                compressed[i] = compressor.Wrap(body.AsSpan(parts[i].Start, parts[i].Length), output.AsSpan(slots[i], Compressor.GetCompressBound(parts[i].Length)));
            }
            finally
            {
                ZstdContexts.Return(compressor);
            }
        });
        output[start] = (byte)frames;
        var at = start + table;
        for (var i = 0; i < frames; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(output.AsSpan(start + 1 + (i * 8)), compressed[i]);
            BinaryPrimitives.WriteInt32LittleEndian(output.AsSpan(start + 1 + (i * 8) + 4), parts[i].Length);
            output.AsSpan(slots[i], compressed[i]).CopyTo(output.AsSpan(at));
            at += compressed[i];
        }
        return at - start;
    }

    /// <summary>
    /// Decompresses the body of <paramref name="snapshot"/> (of <paramref name="header"/>'s version) into
    /// <paramref name="body"/>; version 3's frames in parallel. Throws <see cref="InvalidDataException"/> or
    /// <see cref="ZstdException"/> for damaged data.
    /// </summary>
    private static void DecompressFrames(SnapshotHeader header, byte[] snapshot, byte[] body)
    {
        var compressed = snapshot.AsSpan(header.BodyStart, header.CompressedLength);
        var bodyLength = (int)header.BodyLength;
        if (header.Version == 2)
        {
            DecompressFrame(snapshot, header.BodyStart, header.CompressedLength, body, 0, bodyLength);
            return;
        }
        var frames = compressed.IsEmpty ? 0 : compressed[0];
        var table = 1 + (frames * 2 * sizeof(int));
        if (frames is < 1 or > MaxFrames || compressed.Length < table)
        {
            throw new InvalidDataException("impossible frame table");
        }
        var parts = new (int Source, int Compressed, int Target, int Length)[frames];
        long source = header.BodyStart + table, target = 0;
        for (var i = 0; i < frames; i++)
        {
            var compressedLength = BinaryPrimitives.ReadInt32LittleEndian(compressed[(1 + (i * 8))..]);
            var length = BinaryPrimitives.ReadInt32LittleEndian(compressed[(1 + (i * 8) + 4)..]);
            if (compressedLength < 0 || length < 0)
            {
                throw new InvalidDataException("impossible frame sizes");
            }
            parts[i] = ((int)source, compressedLength, (int)target, length);
            source += compressedLength;
            target += length;
        }
        if (source != header.BodyStart + header.CompressedLength || target != bodyLength)
        {
            throw new InvalidDataException("its frames do not add up to its body");
        }
        Parallel.For(0, frames, i => DecompressFrame(snapshot, parts[i].Source, parts[i].Compressed, body, parts[i].Target, parts[i].Length));
    }

    private static void DecompressFrame(byte[] snapshot, int start, int length, byte[] body, int target, int bodyLength)
    {
        var decompressor = ZstdContexts.RentDecompressor();
        try
        {
            var written = decompressor.Unwrap(snapshot.AsSpan(start, length), body.AsSpan(target, bodyLength));
            if (written != bodyLength)
            {
                throw new InvalidDataException($"a part of its body decompresses to {written:N0} bytes, not the {bodyLength:N0} announced");
            }
        }
        finally
        {
            ZstdContexts.Return(decompressor);
        }
    }

    /// <summary>
    /// Reads and checks a snapshot's header, length and checksum without decompressing its body.
    /// Throws an <see cref="IsolatedException"/> that says what is wrong with a truncated, corrupt or foreign one.
    /// </summary>
    public static SnapshotHeader ReadHeader(ReadOnlySpan<byte> snapshot)
    {
        if (snapshot.Length < Magic.Length + 2 || !snapshot.StartsWith(Magic))
        {
            throw Invalid("it does not start like a sandbox snapshot (not an IsolateGrains snapshot, or damaged at its start)");
        }
        var version = BinaryPrimitives.ReadUInt16LittleEndian(snapshot[Magic.Length..]);
        if (version is < OldestReadableVersion or > FormatVersion)
        {
            throw new IsolatedException($"The snapshot cannot be restored: it is in snapshot format version {version}, this host reads versions {OldestReadableVersion} to {FormatVersion}.");
        }

        SnapshotHeader header;
        int bodyStart;
        try
        {
            // The header is small: copy its start out for a BinaryReader (its strings make its length variable).
            using var reader = new BinaryReader(new MemoryStream(snapshot[..Math.Min(snapshot.Length, 4096)].ToArray()), Encoding.UTF8);
            reader.BaseStream.Position = Magic.Length + 2;
            header = new SnapshotHeader(
                new SnapshotIdentity(ImageKey: reader.ReadString(), ImageHash: reader.ReadString(), RuntimeVersion: reader.ReadString()),
                MemoryBytes: reader.ReadInt64(),
                PageSize: reader.ReadInt32(),
                ChangedPages: reader.ReadInt32(),
                BodyLength: reader.ReadInt64(),
                CompressedLength: reader.ReadInt32());
            bodyStart = (int)reader.BaseStream.Position;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or DecoderFallbackException or FormatException)
        {
            throw Invalid("its header is truncated or damaged", e);
        }

        const long MaxMemory = 1L << 32;
        if (header.MemoryBytes <= 0 || header.MemoryBytes > MaxMemory || header.MemoryBytes % WasmModuleRewriter.PageSize != 0
            || header.PageSize < 1024 || header.PageSize > WasmModuleRewriter.PageSize || !int.IsPow2(header.PageSize)
            || header.ChangedPages < 0 || header.ChangedPages > header.MemoryBytes / header.PageSize
            || header.BodyLength < (long)header.ChangedPages * 20 || header.BodyLength > Array.MaxLength || header.CompressedLength < 0)
        {
            throw Invalid("its header is damaged (impossible sizes)");
        }
        var expected = (long)bodyStart + header.CompressedLength + sizeof(ulong);
        if (snapshot.Length < expected)
        {
            throw Invalid($"it is truncated: {snapshot.Length:N0} bytes of the {expected:N0} its header announces");
        }
        if (snapshot.Length > expected)
        {
            throw Invalid($"it has {snapshot.Length - expected:N0} bytes more than the {expected:N0} its header announces");
        }
        var checksum = BinaryPrimitives.ReadUInt64LittleEndian(snapshot[^sizeof(ulong)..]);
        if (XxHash64.HashToUInt64(snapshot[..^sizeof(ulong)]) != checksum)
        {
            throw Invalid("it is corrupt (its checksum does not match its content)");
        }
        return header with { Version = version, BodyStart = bodyStart, TotalLength = snapshot.Length };
    }

    /// <summary>
    /// Returns a copy of an encoded snapshot with its header changed by <paramref name="change"/> (the body
    /// is kept as it is; the checksum is recomputed). For tools and tests that re-label snapshots.
    /// </summary>
    public static byte[] RewriteHeader(ReadOnlySpan<byte> snapshot, Func<SnapshotHeader, SnapshotHeader> change)
    {
        var header = ReadHeader(snapshot);
        var body = snapshot.Slice(header.BodyStart, header.CompressedLength);
        var output = new MemoryStream(snapshot.Length + 256);
        using var writer = new BinaryWriter(output, Encoding.UTF8, leaveOpen: true);
        WriteHeader(writer, change(header) with { CompressedLength = header.CompressedLength });
        writer.Write(body);
        writer.Write(XxHash64.HashToUInt64(output.GetBuffer().AsSpan(0, (int)output.Length)));
        return output.ToArray();
    }

    /// <summary>
    /// Decodes a snapshot, checking everything but which image it needs (see
    /// <see cref="SnapshotIdentity.EnsureCompatibleWith"/>); throws an <see cref="IsolatedException"/> that
    /// says what is wrong. Dispose the result when done with it.
    /// </summary>
    public static SandboxSnapshot Decode(byte[] snapshot)
    {
        var header = ReadHeader(snapshot);
        var body = ArrayPool<byte>.Shared.Rent(Math.Max((int)header.BodyLength, 1));
        try
        {
            try
            {
                DecompressFrames(header, snapshot, body);
            }
            catch (AggregateException e) when (e.InnerExceptions.All(inner => inner is ZstdException or InvalidDataException))
            {
                throw Invalid("its body cannot be decompressed", e.InnerExceptions[0]);
            }
            catch (Exception e) when (e is ZstdException or InvalidDataException)
            {
                throw Invalid("its body cannot be decompressed", e);
            }
            return ReadBody(header, body);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(body);
            throw;
        }
    }

    private static SandboxSnapshot ReadBody(SnapshotHeader header, byte[] body)
    {
        try
        {
            using var reader = new BinaryReader(new MemoryStream(body, 0, (int)header.BodyLength, writable: false), Encoding.UTF8);
            var globalCount = reader.ReadInt32();
            if (globalCount < 0 || globalCount > 1_000_000)
            {
                throw new InvalidDataException("impossible global count");
            }
            var globals = new SnapshotGlobal[globalCount];
            for (var i = 0; i < globals.Length; i++)
            {
                globals[i] = new SnapshotGlobal(reader.ReadInt32(), ReadValueType(reader), reader.ReadInt64());
            }

            var pages = header.MemoryBytes / header.PageSize;
            var indices = new int[header.ChangedPages];
            for (var i = 0; i < indices.Length; i++)
            {
                indices[i] = reader.ReadInt32();
                if (indices[i] < 0 || indices[i] >= pages || (i > 0 && indices[i] <= indices[i - 1]))
                {
                    throw new InvalidDataException("page indices out of range or out of order");
                }
            }
            var masks = new ulong[indices.Length];
            var chunks = 0L;
            for (var i = 0; i < masks.Length; i++)
            {
                masks[i] = reader.ReadUInt64();
                if (masks[i] == 0)
                {
                    throw new InvalidDataException("a changed page without changed chunks");
                }
                chunks += (long)ulong.PopCount(masks[i]);
            }
            var rawMasks = new ulong[indices.Length];
            for (var i = 0; i < rawMasks.Length; i++)
            {
                rawMasks[i] = reader.ReadUInt64();
                if ((rawMasks[i] & ~masks[i]) != 0)
                {
                    throw new InvalidDataException("an unchanged chunk stored as it is");
                }
            }
            var chunkDataStart = (int)reader.BaseStream.Position;
            var chunkDataLength = chunks * (header.PageSize / ChunksPerPage);
            if (chunkDataStart + chunkDataLength > header.BodyLength)
            {
                throw new EndOfStreamException();
            }
            reader.BaseStream.Position += chunkDataLength;

            var hostState = ReadHostState(reader);
            if (reader.BaseStream.Position != header.BodyLength)
            {
                throw new InvalidDataException("unexpected bytes after the host state");
            }
            return new SandboxSnapshot(header.Identity, header.MemoryBytes, header.PageSize, indices, masks, rawMasks,
                body.AsMemory(chunkDataStart, (int)chunkDataLength), globals, hostState, rented: body);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or IOException or ArgumentException or DecoderFallbackException or FormatException or OverflowException)
        {
            throw Invalid($"its body is damaged ({e.Message})", e);
        }
    }

    private static void WriteHeader(BinaryWriter writer, SnapshotHeader header)
    {
        writer.Write(Magic);
        writer.Write(header.Version);
        writer.Write(header.Identity.ImageKey);
        writer.Write(header.Identity.ImageHash);
        writer.Write(header.Identity.RuntimeVersion);
        writer.Write(header.MemoryBytes);
        writer.Write(header.PageSize);
        writer.Write(header.ChangedPages);
        writer.Write(header.BodyLength);
        writer.Write(header.CompressedLength);
    }

    private static void WriteHostState(BinaryWriter writer, SnapshotHostState state)
    {
        writer.Write(state.MonotonicMilliseconds);
        writer.Write((byte)((state.TimerDueInMilliseconds is null ? 0 : 1) | (state.BackgroundWorkPending ? 2 : 0)));
        if (state.TimerDueInMilliseconds is { } due)
        {
            writer.Write(due);
        }
        writer.Write(state.CurrentDirectory);
        writer.Write(state.OpenFiles.Count);
        foreach (var file in state.OpenFiles)
        {
            writer.Write(file.Descriptor);
            writer.Write(file.Path);
            writer.Write(file.Flags);
            writer.Write(file.Position);
        }
        writer.Write(state.Scratch.Count);
        foreach (var entry in state.Scratch)
        {
            writer.Write(entry.Path);
            writer.Write((byte)(entry.IsDirectory ? 0 : 1));
            if (!entry.IsDirectory)
            {
                writer.Write(entry.Content.Length);
                writer.Write(entry.Content);
            }
        }
    }

    private static SnapshotHostState ReadHostState(BinaryReader reader)
    {
        var monotonic = reader.ReadDouble();
        var flags = reader.ReadByte();
        if (flags > 3)
        {
            throw new InvalidDataException("unknown event-loop flags");
        }
        double? timerDueIn = (flags & 1) != 0 ? reader.ReadDouble() : null;
        var currentDirectory = reader.ReadString();
        var fileCount = reader.ReadInt32();
        if (fileCount < 0 || fileCount > 1_000_000)
        {
            throw new InvalidDataException("impossible descriptor count");
        }
        var files = new OpenFileState[fileCount];
        for (var i = 0; i < files.Length; i++)
        {
            files[i] = new OpenFileState(reader.ReadInt32(), reader.ReadString(), reader.ReadInt32(), reader.ReadInt64());
            if (files[i].Descriptor < 0 || files[i].Descriptor >= 1_000_000)
            {
                throw new InvalidDataException("impossible descriptor number");
            }
        }
        var scratchCount = reader.ReadInt32();
        if (scratchCount < 0 || scratchCount > 10_000_000)
        {
            throw new InvalidDataException("impossible scratch node count");
        }
        var scratch = new ScratchEntry[scratchCount];
        for (var i = 0; i < scratch.Length; i++)
        {
            var path = reader.ReadString();
            var kind = reader.ReadByte();
            if (kind > 1)
            {
                throw new InvalidDataException("unknown scratch node kind");
            }
            byte[] content = [];
            if (kind == 1)
            {
                var length = reader.ReadInt32();
                if (length < 0 || length > reader.BaseStream.Length - reader.BaseStream.Position)
                {
                    throw new EndOfStreamException();
                }
                content = reader.ReadBytes(length);
            }
            scratch[i] = new ScratchEntry(path, kind == 0, content);
        }
        return new SnapshotHostState(monotonic, timerDueIn, (flags & 2) != 0, currentDirectory, files, scratch);
    }

    private static WasmValueType ReadValueType(BinaryReader reader)
    {
        var type = (WasmValueType)reader.ReadByte();
        return type is WasmValueType.I32 or WasmValueType.I64 or WasmValueType.F32 or WasmValueType.F64
            ? type
            : throw new InvalidDataException("unknown global value type");
    }

    private static IsolatedException Invalid(string problem, Exception? inner = null) =>
        new($"The snapshot cannot be restored: {problem}.", inner);
}
