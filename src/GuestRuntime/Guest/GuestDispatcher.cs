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

    /// <summary>Handles the request in <paramref name="mailbox"/> (see <see cref="Mailbox"/>).</summary>
    public static void Dispatch(byte* mailbox)
    {
        s_output.ResetWrittenCount();
        try
        {
            GuestAssemblyResolver.Install();
            var request = new ReadOnlySpan<byte>((byte*)*(nint*)(mailbox + Mailbox.RequestPointer), *(int*)(mailbox + Mailbox.RequestLength));
            Handle(request.ToArray(), s_output);
        }
        catch (Exception e)
        {
            s_output.ResetWrittenCount();
            try
            {
                if (e is ResolutionException or MessagePackSerializationException { InnerException: null })
                {
                    // Names that do not exist and malformed requests are the caller's mistake, not guest code throwing.
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
        WriteReply(mailbox, s_output.WrittenSpan);
    }

    private static void Handle(byte[] request, ArrayBufferWriter<byte> output)
    {
        var reader = new MessagePackReader(request);
        var count = reader.ReadArrayHeader();
        if (count < 1)
        {
            Replies.WriteBadRequest(output, "The request was empty.");
            return;
        }
        var kind = (GuestRequestKind)reader.ReadInt32();
        switch (kind)
        {
            case GuestRequestKind.InvokeDelegate:
                DelegateInvoker.Invoke(ref reader, output);
                break;
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
        reply.CopyTo(new Span<byte>(s_reply, reply.Length));
        *(int*)(mailbox + Mailbox.ResponsePointer) = (int)(nint)s_reply;
        *(int*)(mailbox + Mailbox.ResponseLength) = reply.Length;
    }
}
