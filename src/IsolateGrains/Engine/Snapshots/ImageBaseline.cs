using System.IO.Hashing;
using Wasmtime;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// What snapshots of one image's sandboxes are taken against: a never-run instance of the image (its
/// memory is the image itself, mapped copy-on-write, so reading it adds no private memory), the hash
/// that identifies the image's bytes, the image's mutable globals, and whether the page map finds the
/// pages a sandbox wrote. Created once per image, on first use, and never run.
/// </summary>
internal sealed unsafe class ImageBaseline : IDisposable
{
    private readonly Sandbox _pristine;
    private readonly byte* _memory;

    /// <summary>Instantiates the image once and probes the page map against it.</summary>
    public ImageBaseline(SandboxImage image)
    {
        // The pristine instance never runs, so its memory never grows or moves: one pointer serves every
        // comparison, from any thread, without going through its store.
        _pristine = new Sandbox(image, "snapshot-baseline", static _ => []);
        try
        {
            _memory = (byte*)_pristine.Exports.Memory.GetPointer();
            Length = _pristine.Exports.Memory.GetLength();
            MutableGlobals = FindMutableGlobals(image.Module);
            MemoryHash = image.State.MemoryHash ?? HashMemory(Span(0, checked((int)Length)));
            (PageMapWorks, ImageMappedCopyOnWrite) = ProbePageMap(image);
        }
        catch
        {
            _pristine.Dispose();
            throw;
        }
    }

    /// <summary>The image's memory size in bytes (a new sandbox's memory size).</summary>
    public long Length { get; }

    /// <summary>Identifies the image's memory bytes (see <see cref="HashMemory"/>).</summary>
    public string MemoryHash { get; }

    /// <summary>The image's mutable globals, by index, with their export names and types.</summary>
    public IReadOnlyList<(int Index, string ExportName, WasmValueType Type)> MutableGlobals { get; }

    /// <summary>
    /// True when <c>/proc/self/pagemap</c> reports a page a sandbox wrote as written (checked on a probe
    /// instance): captures then compare only those pages instead of every page of memory.
    /// </summary>
    public bool PageMapWorks { get; }

    /// <summary>True when a page a sandbox only read is still the image's shared page (Wasmtime mapped the image copy-on-write).</summary>
    public bool ImageMappedCopyOnWrite { get; }

    /// <summary>The image's bytes at <paramref name="offset"/> (within <see cref="Length"/>).</summary>
    public ReadOnlySpan<byte> Span(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset));
        }
        return new ReadOnlySpan<byte>(_memory + offset, length);
    }

    /// <summary>The identity of an image's memory: its XxHash128, in hex. Same bytes, same hash, on any machine.</summary>
    public static string HashMemory(ReadOnlySpan<byte> memory) => Convert.ToHexStringLower(XxHash128.Hash(memory));

    /// <summary>Releases the pristine instance.</summary>
    public void Dispose() => _pristine.Dispose();

    private static IReadOnlyList<(int, string, WasmValueType)> FindMutableGlobals(Module module)
    {
        var globals = new List<(int, string, WasmValueType)>();
        foreach (var export in module.Exports.OfType<GlobalExport>())
        {
            if (export.Mutability != Mutability.Mutable
                || !export.Name.StartsWith(WasmModuleRewriter.GlobalExportPrefix, StringComparison.Ordinal)
                || !int.TryParse(export.Name.AsSpan(WasmModuleRewriter.GlobalExportPrefix.Length), out var index))
            {
                continue;
            }
            var type = export.Kind switch
            {
                ValueKind.Int32 => WasmValueType.I32,
                ValueKind.Int64 => WasmValueType.I64,
                ValueKind.Float32 => WasmValueType.F32,
                ValueKind.Float64 => WasmValueType.F64,
                _ => throw new IsolatedException($"The runtime image has a mutable global of type {export.Kind} ({export.Name}), which a snapshot cannot carry."),
            };
            globals.Add((index, export.Name, type));
        }
        return globals.OrderBy(g => g.Item1).ToArray();
    }

    /// <summary>
    /// Checks on a throwaway instance that the page map tells a written page from an untouched or read
    /// one. A page map that reads as zeros (some sandboxes and containers mask it) would otherwise make
    /// every page look unchanged and lose the sandbox's state without a word.
    /// </summary>
    private (bool Works, bool CopyOnWrite) ProbePageMap(SandboxImage image)
    {
        if (!PageMap.IsAvailable)
        {
            return (false, false);
        }
        // A page that holds data lies inside the image's data segment, so it is mapped from the image
        // rather than zero-filled; the mailbox's page is one in every booted image.
        var pageSize = PageMap.SystemPageSize;
        var page = -1L;
        var pages = Length / pageSize;
        var first = Math.Clamp(image.State.MailboxAddress / pageSize, 0, Math.Max(pages - 1, 0));
        for (var i = 0L; i < pages && page < 0; i++)
        {
            var candidate = (first + i) % pages;
            if (Span(candidate * pageSize, pageSize).IndexOfAnyExcept((byte)0) >= 0)
            {
                page = candidate;
            }
        }
        if (page < 0)
        {
            return (false, false);
        }

        using var probe = new Sandbox(image, "snapshot-probe", static _ => []);
        var memory = probe.Exports.Memory;
        var address = page * pageSize;
        var pointer = memory.GetPointer() + (nint)address;
        var value = memory.ReadByte(address);
        var afterRead = PageMap.ReadEntry(pointer);
        memory.WriteByte(address, value);
        var afterWrite = PageMap.ReadEntry(pointer);
        return (afterWrite is { } written && PageMap.IsWritten(written),
                afterRead is { } read && PageMap.IsMappedFromImage(read));
    }
}
