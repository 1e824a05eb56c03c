using System.Buffers;
using System.Runtime.InteropServices;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// The entry point the host calls (through <c>mono_wasm_invoke_jsexport</c>) for every request. It
/// reads the request from the mailbox, runs it, and leaves the reply in a guest-owned buffer whose
/// address it writes back into the mailbox. Nothing may escape it: an exception leaving this method
/// would abort the runtime, so everything is caught and reported.
/// </summary>
internal static unsafe class GuestDispatcher
{
    private static byte* s_reply;
    private static int s_replyCapacity;
    private static readonly ArrayBufferWriter<byte> s_output = new(4096);

    // Requests up to this size are copied into one buffer kept for the sandbox's life (no garbage per call); larger
    // ones get an array of their own, so that one large request does not make every snapshot carry its size.
    private const int KeptRequestBufferLimit = 64 * 1024;
    private static byte[] s_request = new byte[1024];
    private static int s_depth;

    /// <summary>Handles the request in <paramref name="mailbox"/> (see <see cref="Mailbox"/>).</summary>
    public static void Dispatch(byte* mailbox)
    {
        s_output.ResetWrittenCount();
        s_depth++;
        try
        {
            GuestAssemblyResolver.Install();
            Handle(CopyOut((byte*)*(nint*)(mailbox + Mailbox.RequestPointer), *(int*)(mailbox + Mailbox.RequestLength)), s_output);
        }
        catch (Exception e)
        {
            s_output.ResetWrittenCount();
            try
            {
                if (e is ResolutionException || MalformedMessagePack.IsOnlyTheSerializers(e))
                {
                    // Names that do not exist and malformed requests are the caller's mistake, not guest code throwing
                    // (handlers report what the user's code throws themselves, as guest exceptions).
                    Replies.WriteBadRequest(s_output, e.Message);
                }
                else
                {
                    Replies.WriteException(s_output, e);
                }
            }
            catch
            {
                s_output.ResetWrittenCount();
            }
        }
        finally
        {
            s_depth--;
        }
        WriteReply(mailbox, s_output.WrittenSpan);
    }

    /// <summary>
    /// Copies the request out of the host's buffer into managed memory a reader can hold. Nothing keeps a slice of
    /// it past the call (values are deserialized as copies), so one buffer serves every call; a dispatch nested in
    /// another (nothing in the runtime does that) gets its own.
    /// </summary>
    private static ReadOnlyMemory<byte> CopyOut(byte* request, int length)
    {
        if (length <= 0)
        {
            return ReadOnlyMemory<byte>.Empty;
        }
        byte[] copy;
        if (s_depth > 1 || length > KeptRequestBufferLimit)
        {
            copy = new byte[length];
        }
        else
        {
            if (s_request.Length < length)
            {
                s_request = new byte[Math.Max(length, Math.Min(s_request.Length * 2, KeptRequestBufferLimit))];
            }
            copy = s_request;
        }
        ByteCopy.Copy(new ReadOnlySpan<byte>(request, length), copy);
        return copy.AsMemory(0, length);
    }

    private static void Handle(ReadOnlyMemory<byte> request, ArrayBufferWriter<byte> output)
    {
        GuestRequestKind kind;
        ReadOnlyMemory<byte> body;
        var head = request.Span;
        if (head.Length >= 2 && (head[0] & 0xF0) == 0x90 && (head[0] & 0x0F) >= 1 && head[1] <= 0x7F)
        {
            // [kind, ...] with a small array header and a small kind, as every request is: read without a reader.
            kind = (GuestRequestKind)head[1];
            body = request[2..];
        }
        else if (!head.IsEmpty && head[0] is not ((>= 0x90 and <= 0x9f) or 0xdc or 0xdd))
        {
            Replies.WriteBadRequest(output, $"The request is not a MessagePack array [kind, ...] (it starts with byte 0x{head[0]:X2}).");
            return;
        }
        else
        {
            try
            {
                var header = new MessagePackReader(request);
                if (head.IsEmpty || header.ReadArrayHeader() < 1)
                {
                    Replies.WriteBadRequest(output, "The request was empty.");
                    return;
                }
                kind = (GuestRequestKind)header.ReadInt32();
                body = request[(int)header.Consumed..];
            }
            catch (Exception e) when (MalformedMessagePack.Is(e))
            {
                Replies.WriteBadRequest(output, $"The request's kind could not be read: {e.Message}");
                return;
            }
        }
        if (kind == GuestRequestKind.InvokeDelegate)
        {
            // The hot path reads its head from the bytes and builds a reader only for what needs one.
            DelegateInvoker.Invoke(body, output);
            return;
        }
        var reader = new MessagePackReader(body);
        switch (kind)
        {
            case GuestRequestKind.Warmup:
                Warmup.Run(output);
                break;
            case GuestRequestKind.CreateObject:
                ObjectRequests.Create(ref reader, output);
                break;
            case GuestRequestKind.CopyObject:
                ObjectRequests.Copy(ref reader, output);
                break;
            case GuestRequestKind.ResolveMethod:
                ObjectRequests.Resolve(ref reader, output);
                break;
            case GuestRequestKind.InvokeMethod:
                ObjectRequests.Invoke(ref reader, output);
                break;
            case GuestRequestKind.GetObjectValue:
                ObjectRequests.GetValue(ref reader, output);
                break;
            case GuestRequestKind.ReleaseObjects:
                ObjectRequests.Release(ref reader, output);
                break;
            case GuestRequestKind.CompleteOperation:
                PendingOperations.Complete(ref reader, output);
                break;
            case GuestRequestKind.Prepare:
                MethodPreparer.Prepare(ref reader, output);
                break;
            case GuestRequestKind.CollectGarbage:
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                Replies.WriteEmptySuccess(output);
                break;
            default:
                Replies.WriteBadRequest(output, $"Unknown request kind {(int)kind}.");
                break;
        }
    }

    private static void WriteReply(byte* mailbox, ReadOnlySpan<byte> reply)
    {
        if (reply.Length > s_replyCapacity)
        {
            var capacity = Math.Max(reply.Length, Math.Max(4096, s_replyCapacity * 2));
            var grown = (byte*)NativeMemory.Realloc(s_reply, (nuint)capacity);
            if (grown == null)
            {
                *(int*)(mailbox + Mailbox.ResponsePointer) = 0;
                *(int*)(mailbox + Mailbox.ResponseLength) = 0;
                return;
            }
            s_reply = grown;
            s_replyCapacity = capacity;
        }
        ByteCopy.Copy(reply, new Span<byte>(s_reply, reply.Length));
        *(int*)(mailbox + Mailbox.ResponsePointer) = (int)(nint)s_reply;
        *(int*)(mailbox + Mailbox.ResponseLength) = reply.Length;
    }
}
