using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// Reads Linux's <c>/proc/self/pagemap</c>: one 64-bit entry per virtual page of this process, saying
/// whether the page is present and whether it is a file page (or shared anonymous memory). A sandbox's
/// linear memory is the image mapped copy-on-write, so a page the guest wrote is present and private,
/// while an untouched page is absent and a page it only read is a file page: reading the entries finds
/// the written pages without touching (and so faulting in) the others.
/// </summary>
internal static class PageMap
{
    /// <summary>Bit 63: the page is present in RAM.</summary>
    private const ulong Present = 1UL << 63;

    /// <summary>Bit 62: the page is swapped out.</summary>
    private const ulong Swapped = 1UL << 62;

    /// <summary>Bit 61: the page is a file page or shared anonymous memory (not a private copy).</summary>
    private const ulong FileOrShared = 1UL << 61;

    private static readonly Lazy<SafeFileHandle?> s_handle = new(Open);

    /// <summary>The size of the pages the entries describe.</summary>
    public static int SystemPageSize { get; } = Environment.SystemPageSize;

    /// <summary>True when this process can read its page map (Linux with procfs).</summary>
    public static bool IsAvailable => s_handle.Value is not null;

    /// <summary>
    /// Finds the pages of size <paramref name="pageSize"/> in <c>[address, address + length)</c> that may
    /// have been written since the range was mapped: those covering a present private page or a swapped
    /// one. Returns their indices from <paramref name="address"/>, ascending, or null when the page map
    /// cannot be read (the caller must then consider every page).
    /// </summary>
    /// <param name="address">The start of the range; aligned to <see cref="SystemPageSize"/>.</param>
    /// <param name="length">The length of the range; a multiple of <see cref="SystemPageSize"/> and of <paramref name="pageSize"/>.</param>
    /// <param name="pageSize">The size of the pages to report (a power of two).</param>
    public static List<int>? FindWrittenPages(nint address, long length, int pageSize)
    {
        if (FindPresentPages(address, length) is not { } present)
        {
            return null;
        }
        var written = present.Written;
        var pages = new List<int>(written.Count);
        foreach (var systemPage in written)
        {
            // A system page may cover several snapshot pages, or several system pages one snapshot page.
            var start = (long)systemPage * SystemPageSize;
            for (var page = (int)(start / pageSize); (long)page * pageSize < start + SystemPageSize; page++)
            {
                if (pages.Count == 0 || pages[^1] != page)
                {
                    pages.Add(page);
                }
            }
        }
        return pages;
    }

    /// <summary>
    /// Sorts the present system pages in <c>[address, address + length)</c> in one read of the page map: those
    /// written (private) and those only read (still the mapped file's). Null when the page map cannot be read.
    /// </summary>
    public static (List<int> Written, List<int> ReadOnly)? FindPresentPages(nint address, long length)
    {
        var systemPages = length / SystemPageSize;
        var entries = Read(address, systemPages);
        if (entries is null)
        {
            return null;
        }
        try
        {
            var (written, readOnly) = (new List<int>(), new List<int>());
            for (var i = 0; i < systemPages; i++)
            {
                var entry = BinaryPrimitives.ReadUInt64LittleEndian(entries.AsSpan(i * 8, 8));
                if (IsWritten(entry))
                {
                    written.Add(i);
                }
                else if (IsMappedFromImage(entry))
                {
                    readOnly.Add(i);
                }
            }
            return (written, readOnly);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(entries);
        }
    }

    /// <summary>Reads the entry of the one system page at <paramref name="address"/>, or null when the page map cannot be read.</summary>
    public static ulong? ReadEntry(nint address)
    {
        var entries = Read(address, 1);
        if (entries is null)
        {
            return null;
        }
        var entry = BinaryPrimitives.ReadUInt64LittleEndian(entries);
        ArrayPool<byte>.Shared.Return(entries);
        return entry;
    }

    /// <summary>True when an entry says the page may differ from what was mapped: present and private, or swapped out.</summary>
    public static bool IsWritten(ulong entry) => (entry & (Present | FileOrShared)) == Present || (entry & Swapped) != 0;

    /// <summary>True when an entry says the page is present and still the mapped file's (or shared memory's) page.</summary>
    public static bool IsMappedFromImage(ulong entry) => (entry & (Present | FileOrShared)) == (Present | FileOrShared);

    /// <summary>Reads the entries of <paramref name="pages"/> system pages from <paramref name="address"/> into a pooled array, or null.</summary>
    private static byte[]? Read(nint address, long pages)
    {
        if (s_handle.Value is not { } handle || pages <= 0 || pages > Array.MaxLength / 8 || address % SystemPageSize != 0)
        {
            return null;
        }
        var bytes = (int)(pages * 8);
        var buffer = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            var offset = (long)((ulong)address / (ulong)SystemPageSize * 8);
            var read = 0;
            while (read < bytes)
            {
                var count = RandomAccess.Read(handle, buffer.AsSpan(read, bytes - read), offset + read);
                if (count <= 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return null;
                }
                read += count;
            }
            return buffer;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return null;
        }
    }

    private static SafeFileHandle? Open()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        try
        {
            return File.OpenHandle("/proc/self/pagemap", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
