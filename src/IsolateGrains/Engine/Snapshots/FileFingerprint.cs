using System.Runtime.InteropServices;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// What the file system says about a file without reading it: device and inode (which file), size, and
/// modification and status-change times (whether it was written). Any write through the file system
/// moves the change time, which no program can set back (unlike the modification time), so an equal
/// fingerprint means the bytes were not rewritten since it was taken.
/// </summary>
/// <remarks>
/// It cannot see changes the file system does not record: bit rot or bad sectors, writes to the block
/// device underneath, a file system bug, or the system clock set back so a rewrite lands on the very
/// same timestamps. Linux only (<c>statx</c>); elsewhere <see cref="Of"/> returns null.
/// </remarks>
/// <param name="Device">The device the file lives on (major and minor number).</param>
/// <param name="Inode">The inode number.</param>
/// <param name="Length">The size in bytes.</param>
/// <param name="ModifiedNanoseconds">The modification time, in nanoseconds since the Unix epoch.</param>
/// <param name="ChangedNanoseconds">The status-change time (ctime), in nanoseconds since the Unix epoch.</param>
internal sealed partial record FileFingerprint(ulong Device, ulong Inode, long Length, long ModifiedNanoseconds, long ChangedNanoseconds)
{
    private const int AtCurrentDirectory = -100;
    private const uint WantedFields = 0x0040 /* STATX_MTIME */ | 0x0080 /* STATX_CTIME */ | 0x0100 /* STATX_INO */ | 0x0200 /* STATX_SIZE */;
    private const int StatxSize = 256;

    private static volatile bool s_unavailable = !OperatingSystem.IsLinux();

    /// <summary>The fingerprint of the file at <paramref name="path"/>, or null where it cannot be taken.</summary>
    public static FileFingerprint? Of(string path)
    {
        if (s_unavailable)
        {
            return null;
        }
        Span<byte> buffer = stackalloc byte[StatxSize];
        int result;
        try
        {
            result = Statx(AtCurrentDirectory, path, 0, WantedFields, ref MemoryMarshal.GetReference(buffer));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_unavailable = true; // No statx in this C library: fingerprints are never taken, files are always hashed.
            return null;
        }
        // struct statx has one layout on every Linux architecture (linux/stat.h), in native byte order.
        if (result != 0 || (MemoryMarshal.Read<uint>(buffer) & WantedFields) != WantedFields)
        {
            return null;
        }
        var deviceMajor = MemoryMarshal.Read<uint>(buffer[136..]);
        var deviceMinor = MemoryMarshal.Read<uint>(buffer[140..]);
        return new FileFingerprint(
            Device: ((ulong)deviceMajor << 32) | deviceMinor,
            Inode: MemoryMarshal.Read<ulong>(buffer[32..]),
            Length: (long)MemoryMarshal.Read<ulong>(buffer[40..]),
            ModifiedNanoseconds: Timestamp(buffer[112..]),
            ChangedNanoseconds: Timestamp(buffer[96..]));
    }

    /// <summary>A <c>struct statx_timestamp</c> (seconds, then nanoseconds) as nanoseconds.</summary>
    private static long Timestamp(ReadOnlySpan<byte> field) =>
        MemoryMarshal.Read<long>(field) * 1_000_000_000 + MemoryMarshal.Read<uint>(field[8..]);

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directory, string path, int flags, uint mask, ref byte buffer);
}
