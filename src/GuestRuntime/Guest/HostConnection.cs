using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using IsolateGrains.Protocol;

namespace IsolateGrains.Guest;

/// <summary>
/// The guest's end of the channel to the host: one <c>pread</c> on <c>/dev/host</c> carries a request
/// in and the reply out through the same buffer (the host serves that device; nothing else can).
/// </summary>
internal static unsafe class HostConnection
{
    private static SafeFileHandle? s_device;
    private static byte[] s_buffer = new byte[16 * 1024];
    private static bool s_directUnavailable;

    /// <summary>
    /// Sends <paramref name="request"/> to the host and returns its reply, which stays valid only until
    /// the next exchange (it is the channel's buffer: callers copy what they keep).
    /// </summary>
    public static ReadOnlyMemory<byte> Exchange(ReadOnlySpan<byte> request)
    {
        s_device ??= File.OpenHandle(HostChannel.Path, FileMode.Open, FileAccess.Read);
        if (s_buffer.Length < request.Length + 4)
        {
            s_buffer = new byte[request.Length + 4];
        }
        BinaryPrimitives.WriteInt32LittleEndian(s_buffer, request.Length);
        request.CopyTo(s_buffer.AsSpan(4));
        var read = Read(s_device, s_buffer);
        var replyLength = ReadReplyLength(read);
        if (read == replyLength + 4)
        {
            return s_buffer.AsMemory(4, replyLength);
        }

        // The reply did not fit: fetch it with a buffer of its size.
        s_buffer = new byte[replyLength + 4];
        BinaryPrimitives.WriteInt32LittleEndian(s_buffer, HostChannel.FetchPendingReply);
        read = Read(s_device, s_buffer);
        if (ReadReplyLength(read) != replyLength || read != replyLength + 4)
        {
            throw new IOException("The host channel returned an incomplete reply.");
        }
        return s_buffer.AsMemory(4, replyLength);
    }

    /// <summary>
    /// One <c>pread</c> of the whole buffer at offset 0. It calls the runtime's own native <c>pread</c> entry
    /// directly: <see cref="RandomAccess.Read(SafeFileHandle, Span{byte}, long)"/> ends in the same call but
    /// first validates and reference-counts the handle, which in the interpreter costs as much as the
    /// exchange itself. The descriptor stays open for the sandbox's life, so the raw value is safe to use.
    /// </summary>
    private static int Read(SafeFileHandle device, byte[] buffer)
    {
        if (!s_directUnavailable)
        {
            try
            {
                fixed (byte* start = buffer)
                {
                    var read = SystemNativePRead(device.DangerousGetHandle(), start, buffer.Length, 0);
                    if (read >= 0)
                    {
                        return read;
                    }
                }
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException or MarshalDirectiveException)
            {
                s_directUnavailable = true;
            }
        }
        // The portable route (it also turns a failed read into an exception that says why).
        return RandomAccess.Read(device, buffer, 0);
    }

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_PRead")]
    private static extern int SystemNativePRead(nint descriptor, byte* buffer, int count, long offset);

    private static int ReadReplyLength(int read)
    {
        if (read < 4)
        {
            throw new IOException($"The host channel failed (read returned {read}).");
        }
        var length = BinaryPrimitives.ReadInt32LittleEndian(s_buffer);
        if (length < 0)
        {
            throw new IOException("The host channel returned a malformed reply.");
        }
        return length;
    }
}
