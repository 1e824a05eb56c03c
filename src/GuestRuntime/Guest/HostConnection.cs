using System.Buffers;
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
    private const int InitialBufferSize = 16 * 1024;

    // A buffer grown for one large request or reply is dropped at the next exchange (by then the reply it held is
    // no longer valid): kept, its pages would ride along in every snapshot and fork of the sandbox.
    private const int KeptBufferLimit = 64 * 1024;

    private static byte[] s_buffer = new byte[InitialBufferSize];
    private static bool s_directUnavailable;

    /// <summary>
    /// Sends <paramref name="request"/> to the host and returns its reply, which stays valid only until
    /// the next exchange (it is the channel's buffer: callers copy what they keep).
    /// </summary>
    public static ReadOnlyMemory<byte> Exchange(ReadOnlySpan<byte> request)
    {
        if (s_writer.Active)
        {
            // A request is being written into the channel's buffer (its serialization called the host): this one
            // goes through a buffer of its own so as not to overwrite it.
            var own = new byte[request.Length + 4];
            request.CopyTo(own.AsSpan(4));
            return ExchangeIn(ref own, request.Length);
        }
        DropLargeBuffer();
        if (s_buffer.Length < request.Length + 4)
        {
            s_buffer = new byte[request.Length + 4];
        }
        request.CopyTo(s_buffer.AsSpan(4));
        return ExchangeIn(ref s_buffer, request.Length);
    }

    /// <summary>
    /// Starts a request written straight into the channel's buffer, which saves a copy per call; send it with
    /// <see cref="SendWrittenRequest"/> (or drop it with <see cref="AbandonWrittenRequest"/>). Null while another
    /// is being written (a value's serialization calling the host): that call uses <see cref="Exchange"/>.
    /// </summary>
    public static IBufferWriter<byte>? BeginRequest()
    {
        if (s_writer.Active)
        {
            return null;
        }
        DropLargeBuffer();
        s_writer.Start();
        return s_writer;
    }

    /// <summary>Sends the request written since <see cref="BeginRequest"/> and returns the reply (valid until the next exchange).</summary>
    public static ReadOnlyMemory<byte> SendWrittenRequest()
    {
        var length = s_writer.Written;
        s_writer.Stop();
        return ExchangeIn(ref s_buffer, length);
    }

    private static void DropLargeBuffer()
    {
        if (s_buffer.Length > KeptBufferLimit)
        {
            s_buffer = new byte[InitialBufferSize];
        }
    }

    /// <summary>Drops the request being written (its serialization failed).</summary>
    public static void AbandonWrittenRequest() => s_writer.Stop();

    /// <summary>Exchanges the request of <paramref name="requestLength"/> bytes at offset 4 of <paramref name="buffer"/>; the reply comes back in it (or in a larger buffer that replaces it).</summary>
    private static ReadOnlyMemory<byte> ExchangeIn(ref byte[] buffer, int requestLength)
    {
        s_device ??= File.OpenHandle(HostChannel.Path, FileMode.Open, FileAccess.Read);
        BinaryPrimitives.WriteInt32LittleEndian(buffer, requestLength);
        var read = Read(s_device, buffer);
        var replyLength = ReadReplyLength(buffer, read);
        if (read == replyLength + 4)
        {
            return buffer.AsMemory(4, replyLength);
        }

        // The reply did not fit: fetch it with a buffer of its size.
        buffer = new byte[replyLength + 4];
        BinaryPrimitives.WriteInt32LittleEndian(buffer, HostChannel.FetchPendingReply);
        read = Read(s_device, buffer);
        if (ReadReplyLength(buffer, read) != replyLength || read != replyLength + 4)
        {
            throw new IOException("The host channel returned an incomplete reply.");
        }
        return buffer.AsMemory(4, replyLength);
    }

    private static readonly ChannelRequestWriter s_writer = new();

    /// <summary>Writes a request into the channel's buffer after its 4-byte length, growing the buffer as needed.</summary>
    private sealed class ChannelRequestWriter : IBufferWriter<byte>
    {
        public bool Active { get; private set; }

        public int Written { get; private set; }

        public void Start()
        {
            Active = true;
            Written = 0;
        }

        public void Stop() => Active = false;

        public void Advance(int count) => Written += count;

        // Reserve first, then read the field: Reserve may replace the buffer (s_buffer.AsSpan(Reserve(n)) would read
        // the old one before the call, and hand out a span of it).
        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            var start = Reserve(sizeHint);
            return s_buffer.AsMemory(start);
        }

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            var start = Reserve(sizeHint);
            return s_buffer.AsSpan(start);
        }

        private int Reserve(int sizeHint)
        {
            var start = 4 + Written;
            var needed = start + Math.Max(sizeHint, 256);
            if (s_buffer.Length < needed)
            {
                Array.Resize(ref s_buffer, Math.Max(needed, s_buffer.Length * 2));
            }
            return start;
        }
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

    private static int ReadReplyLength(byte[] buffer, int read)
    {
        if (read < 4)
        {
            throw new IOException($"The host channel failed (read returned {read}).");
        }
        var length = BinaryPrimitives.ReadInt32LittleEndian(buffer);
        if (length < 0)
        {
            throw new IOException("The host channel returned a malformed reply.");
        }
        return length;
    }
}
