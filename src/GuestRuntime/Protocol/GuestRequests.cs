using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// The host's side of the wire protocol with the guest dispatcher: encodes requests and decodes replies
/// (the guest's side is <c>IsolateGrains.Guest.GuestDispatcher</c>). Replies come from untrusted code,
/// so a malformed one becomes an <see cref="IsolatedException"/> that says so, never a crash.
/// </summary>
internal static partial class GuestRequests
{
    /// <summary>Encodes <c>[Warmup]</c>.</summary>
    public static byte[] Warmup() => KindOnly(GuestRequestKind.Warmup);

    /// <summary>Encodes <c>[CollectGarbage]</c>.</summary>
    public static byte[] CollectGarbage() => KindOnly(GuestRequestKind.CollectGarbage);

    private static byte[] KindOnly(GuestRequestKind kind)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(1);
        writer.Write((int)kind);
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Encodes a delegate invocation: the method by its key (plus its descriptor when the sandbox has not
    /// seen that key yet) and the target, a lambda's closure with the captured values it uses.
    /// </summary>
    /// <param name="delegate">The lambda or method group.</param>
    /// <param name="keysKnownToSandbox">Method keys the sandbox has already resolved (their descriptors are left out).</param>
    /// <param name="key">The method's key, to add to <paramref name="keysKnownToSandbox"/> once the call succeeded.</param>
    public static byte[] InvokeDelegate(Delegate @delegate, IReadOnlySet<ulong> keysKnownToSandbox, out ulong key)
    {
        ArgumentNullException.ThrowIfNull(@delegate);
        if (@delegate.HasSingleTarget is false)
        {
            throw new ArgumentException("A multicast delegate cannot be sent to a sandbox; pass a single lambda or method.", nameof(@delegate));
        }
        var method = @delegate.Method;
        var plan = s_plans.GetOrAdd(method, static m => new DelegatePlan(MethodDescriptor.For(m)));
        if (!method.IsStatic && @delegate.Target is null)
        {
            throw new ArgumentException("The delegate has no target.", nameof(@delegate));
        }

        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(4);
        writer.Write((int)GuestRequestKind.InvokeDelegate);
        writer.Write(plan.Descriptor.Key);
        var sendDescriptor = !keysKnownToSandbox.Contains(plan.Descriptor.Key);
        if (sendDescriptor)
        {
            plan.Descriptor.Write(ref writer);
        }
        else
        {
            writer.WriteNil();
        }
        if (method.IsStatic)
        {
            writer.WriteNil();
        }
        else
        {
            try
            {
                ClosureSerializer.Serialize(ref writer, method, @delegate.Target!);
            }
            catch (MessagePackSerializationException e)
            {
                throw new IsolatedException($"The values captured by the lambda could not be serialized for the sandbox: {e.Message}", e);
            }
        }
        writer.Flush();
        key = plan.Descriptor.Key;
        return output.WrittenSpan.ToArray();
    }

    /// <summary>
    /// True for the kinds only the host sends (warm-up, garbage collection, completing an operation the guest awaits,
    /// preparing methods): a caller's request of one of these could forge results or state.
    /// </summary>
    public static bool IsHostOnly(GuestRequestKind kind) =>
        kind is GuestRequestKind.Warmup or GuestRequestKind.CollectGarbage or GuestRequestKind.CompleteOperation or GuestRequestKind.Prepare;

    /// <summary>A reply that makes the receiver throw an <see cref="IsolatedException"/> with <paramref name="message"/>.</summary>
    public static byte[] BadRequestReply(string message)
    {
        var output = new ArrayBufferWriter<byte>();
        Replies.WriteBadRequest(output, message);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>The operation id of a "pending" reply, or null for a final one (which is left undecoded).</summary>
    public static int? PeekPending(ReadOnlyMemory<byte> reply)
    {
        try
        {
            var reader = new MessagePackReader(reply);
            return reader.ReadArrayHeader() == 2 && (ReplyStatus)reader.ReadInt32() == ReplyStatus.Pending ? reader.ReadInt32() : null;
        }
        catch (Exception e) when (MalformedMessagePack.Is(e))
        {
            return null; // Malformed: the final decoding reports it.
        }
    }

    /// <summary>Decodes a reply that must be final: returns the serialized result or throws the guest's exception.</summary>
    public static ReadOnlyMemory<byte>? ReadReply(byte[] reply)
    {
        var decoded = ReadReplyOrPending(reply);
        if (decoded.PendingOperation is not null)
        {
            throw new IsolatedException("The guest method returned a task that has not completed; call it with InvokeAsync.");
        }
        return decoded.Value;
    }

    /// <summary>Decodes a reply: the serialized result, or the id of the operation that will deliver it; throws the guest's exception.</summary>
    public static GuestReply ReadReplyOrPending(ReadOnlyMemory<byte> reply)
    {
        try
        {
            var reader = new MessagePackReader(reply);
            var count = reader.ReadArrayHeader();
            var status = (ReplyStatus)reader.ReadInt32();
            switch (status)
            {
                case ReplyStatus.Success when count == 2:
                    // The result is inline: hand back its bytes for the caller to deserialize as its type.
                    var start = (int)reader.Consumed;
                    reader.Skip();
                    return new GuestReply(reply.Slice(start, (int)reader.Consumed - start), null);
                case ReplyStatus.Pending when count == 2:
                    return new GuestReply(default, reader.ReadInt32());
                case ReplyStatus.GuestException when count == 5:
                    var type = reader.ReadString() ?? "System.Exception";
                    var message = reader.ReadString() ?? "";
                    var stack = reader.ReadString();
                    var details = reader.ReadString();
                    throw new IsolatedException(type, message, stack, details);
                case ReplyStatus.BadRequest when count == 2:
                    throw new IsolatedException(reader.ReadString() ?? "The sandbox refused the request.");
                default:
                    throw new IsolatedException($"The sandbox sent a malformed reply (status {(int)status}, {count} elements).");
            }
        }
        catch (MessagePackSerializationException e)
        {
            throw new IsolatedException($"The sandbox sent a malformed reply: {e.Message}", e);
        }
        catch (EndOfStreamException e)
        {
            throw new IsolatedException("The sandbox sent a truncated reply.", e);
        }
        catch (Exception e) when (MalformedMessagePack.Is(e))
        {
            // A number too large for its field, a length past the end.
            throw new IsolatedException($"The sandbox sent a malformed reply: {e.Message}", e);
        }
    }

    /// <summary>Deserializes a result the guest sent (untrusted bytes, so with MessagePack's untrusted-data guards).</summary>
    public static T? Deserialize<T>(ReadOnlyMemory<byte>? bytes)
    {
        if (bytes is not { } value)
        {
            return default;
        }
        try
        {
            return MessagePackSerializer.Deserialize<T>(value, IsolatedSerializer.Options);
        }
        catch (MessagePackSerializationException e)
        {
            throw new IsolatedException($"The sandbox's result could not be read as {typeof(T).Name}: {e.InnerException?.Message ?? e.Message}", e);
        }
    }

    private static readonly ConcurrentDictionary<MethodInfo, DelegatePlan> s_plans = new();

    /// <summary>A decoded reply: the result's bytes, or the operation that will deliver them later.</summary>
    /// <param name="Value">The serialized result (MessagePack; nil for none).</param>
    /// <param name="PendingOperation">Set when the guest is still working: its operation id.</param>
    internal readonly record struct GuestReply(ReadOnlyMemory<byte> Value, int? PendingOperation);

    /// <summary>What is worked out once per method.</summary>
    private sealed record DelegatePlan(MethodDescriptor Descriptor);
}
