using System.Runtime.InteropServices;

namespace IsolateGrains.Engine.WarmStart;

/// <summary>
/// An anonymous in-memory file (Linux <c>memfd</c>) holding a template sandbox's memory, which new
/// sandboxes map over their own memory copy-on-write in one system call: a page is copied only when a
/// sandbox writes it, just as Wasmtime maps the image itself.
/// </summary>
internal sealed unsafe partial class TemplateMemoryFile : IDisposable
{
    private const uint CloseOnExec = 1;
    private const int ProtectReadWrite = 1 | 2;
    private const int MapPrivateFixed = 0x02 | 0x10;

    private int _descriptor;

    private TemplateMemoryFile(int descriptor) => _descriptor = descriptor;

    /// <summary>Creates an empty file of <paramref name="length"/> bytes, or returns null where memfd is unavailable.</summary>
    public static TemplateMemoryFile? TryCreate(long length)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        try
        {
            var descriptor = MemfdCreate("isolategrains-template", CloseOnExec);
            if (descriptor < 0)
            {
                return null;
            }
            if (Ftruncate(descriptor, length) != 0)
            {
                _ = Close(descriptor);
                return null;
            }
            return new TemplateMemoryFile(descriptor);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> at <paramref name="offset"/>.</summary>
    public void Write(long offset, ReadOnlySpan<byte> bytes)
    {
        fixed (byte* start = bytes)
        {
            var written = 0;
            while (written < bytes.Length)
            {
                var result = Pwrite(_descriptor, start + written, (nuint)(bytes.Length - written), offset + written);
                if (result <= 0)
                {
                    throw new IOException($"Writing the template's memory file failed (errno {Marshal.GetLastPInvokeError()}).");
                }
                written += (int)result;
            }
        }
    }

    /// <summary>Reads <paramref name="destination"/>'s length of bytes from <paramref name="offset"/>.</summary>
    public void Read(long offset, Span<byte> destination)
    {
        fixed (byte* start = destination)
        {
            var read = 0;
            while (read < destination.Length)
            {
                var result = Pread(_descriptor, start + read, (nuint)(destination.Length - read), offset + read);
                if (result <= 0)
                {
                    throw new IOException($"Reading the template's memory file failed (errno {Marshal.GetLastPInvokeError()}).");
                }
                read += (int)result;
            }
        }
    }

    /// <summary>
    /// Maps <paramref name="length"/> bytes of the file from <paramref name="offset"/> at exactly
    /// <paramref name="address"/>, private and copy-on-write, replacing what was mapped there.
    /// </summary>
    /// <returns>False when the system refused (the caller then copies the bytes instead).</returns>
    public bool TryMap(byte* address, long offset, long length) =>
        Mmap(address, (nuint)length, ProtectReadWrite, MapPrivateFixed, _descriptor, offset) == address;

    /// <summary>Closes the file; mappings made from it stay valid.</summary>
    public void Dispose()
    {
        var descriptor = Interlocked.Exchange(ref _descriptor, -1);
        if (descriptor >= 0)
        {
            _ = Close(descriptor);
        }
    }

    [LibraryImport("libc", EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MemfdCreate(string name, uint flags);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    private static partial int Ftruncate(int descriptor, long length);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint Pwrite(int descriptor, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static partial nint Pread(int descriptor, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial byte* Mmap(byte* address, nuint length, int protection, int flags, int descriptor, long offset);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int descriptor);
}
