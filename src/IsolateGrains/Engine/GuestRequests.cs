using System.Buffers;
using System.Reflection;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Engine;

/// <summary>
/// The host's side of the wire protocol with the guest dispatcher: encodes requests and decodes replies
/// (the guest's side is <c>IsolateGrains.Guest.GuestDispatcher</c>). Replies come from untrusted code,
/// so a malformed one becomes an <see cref="IsolatedException"/> that says so, never a crash.
/// </summary>
internal static class GuestRequests
{
    /// <summary>Encodes <c>[Warmup]</c>.</summary>
    public static byte[] Warmup()
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(1);
        writer.Write((int)GuestRequestKind.Warmup);
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Encodes a delegate invocation: the method by declaring type and metadata token, and the target
    /// (a lambda's closure object with its captured values) serialized with MessagePack.
    /// </summary>
    public static byte[] InvokeDelegate(Delegate @delegate)
    {
        ArgumentNullException.ThrowIfNull(@delegate);
        if (@delegate.GetInvocationList().Length != 1)
        {
            throw new ArgumentException("A multicast delegate cannot be sent to a sandbox; pass a single lambda or method.", nameof(@delegate));
        }
        var method = @delegate.Method;
        var declaringType = method.DeclaringType
            ?? throw new ArgumentException($"Method '{method.Name}' has no declaring type (dynamic methods cannot be sent to a sandbox).", nameof(@delegate));
        if (method is not { IsStatic: true } && @delegate.Target is null)
        {
            throw new ArgumentException("The delegate has no target.", nameof(@delegate));
        }

        byte[]? target = null;
        if (!method.IsStatic)
        {
            try
            {
                target = ClosureSerializer.Serialize(method, @delegate.Target!);
            }
            catch (MessagePackSerializationException e)
            {
                throw new IsolatedException($"The values captured by the lambda could not be serialized for the sandbox: {e.Message}", e);
            }
        }

        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(6);
        writer.Write((int)GuestRequestKind.InvokeDelegate);
        writer.Write(declaringType.Assembly.FullName);
        writer.Write(declaringType.FullName);
        writer.Write(method.MetadataToken);
        writer.Write(method.Module.ModuleVersionId.ToString());
        if (target is null)
        {
            writer.WriteNil();
        }
        else
        {
            writer.Write(target);
        }
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Decodes a reply: returns the serialized result (null for none) or throws the guest's exception.</summary>
    public static ReadOnlyMemory<byte>? ReadReply(byte[] reply)
    {
        try
        {
            var reader = new MessagePackReader(reply);
            var count = reader.ReadArrayHeader();
            var status = (ReplyStatus)reader.ReadInt32();
            switch (status)
            {
                case ReplyStatus.Success when count == 2:
                    if (reader.TryReadNil())
                    {
                        return null;
                    }
                    var bytes = reader.ReadBytes() ?? throw new MessagePackSerializationException("missing result");
                    return bytes.ToArray();
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

    /// <summary>The method the image builder invokes to warm the delegate path.</summary>
    public static MethodInfo WarmupProbe { get; } = typeof(Guest.Warmup).GetMethod(nameof(Guest.Warmup.Probe), BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)!;
}
