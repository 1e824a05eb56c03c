using System.Buffers;
using MessagePack;

namespace IsolateGrains.Protocol;

internal static partial class GuestRequests
{
    /// <summary>What to prepare for a delegate: its method and the closure fields it uses.</summary>
    public static MethodToPrepare MethodToPrepare(Delegate @delegate)
    {
        ArgumentNullException.ThrowIfNull(@delegate);
        var descriptor = s_plans.GetOrAdd(@delegate.Method, static m => new DelegatePlan(MethodDescriptor.For(m))).Descriptor;
        var fields = @delegate.Target is { } target && !@delegate.Method.IsStatic ? ClosureSerializer.UsedFieldNames(@delegate.Method, target.GetType()) : [];
        return new MethodToPrepare(descriptor, fields);
    }

    /// <summary>Encodes <c>[Prepare, [[key, descriptor, [capturedField, ...]], ...]]</c>: prepare these methods without running them.</summary>
    public static byte[] Prepare(IEnumerable<MethodToPrepare> methods)
    {
        var list = methods.ToList();
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(2);
        writer.Write((int)GuestRequestKind.Prepare);
        writer.WriteArrayHeader(list.Count);
        foreach (var method in list)
        {
            writer.WriteArrayHeader(3);
            writer.Write(method.Descriptor.Key);
            method.Descriptor.Write(ref writer);
            writer.WriteArrayHeader(method.CapturedFields.Count);
            foreach (var field in method.CapturedFields)
            {
                writer.Write(field);
            }
        }
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Decodes the reply to <see cref="Prepare"/>: the keys the sandbox prepared.</summary>
    public static IReadOnlyList<ulong> ReadPrepared(byte[] reply)
    {
        var value = ReadReply(reply) ?? throw new IsolatedException("The sandbox answered a prepare request without a value.");
        try
        {
            var reader = new MessagePackReader(value);
            var count = reader.ReadArrayHeader();
            var keys = new ulong[count];
            for (var i = 0; i < count; i++)
            {
                keys[i] = reader.ReadUInt64();
            }
            return keys;
        }
        catch (Exception e) when (MalformedMessagePack.Is(e))
        {
            throw new IsolatedException($"The sandbox's answer to a prepare request was malformed: {e.Message}", e);
        }
    }

    /// <summary>
    /// Reads what to prepare from an encoded <c>InvokeDelegate</c> request: the method's descriptor and the
    /// names of the closure fields the request carries (the fields the method uses). Null when the request
    /// is of another kind, carries only the key, or names one of <paramref name="knownKeys"/>.
    /// </summary>
    public static MethodToPrepare? TryReadMethodToPrepare(ReadOnlyMemory<byte> request, IReadOnlySet<ulong> knownKeys)
    {
        try
        {
            var reader = new MessagePackReader(request);
            if (reader.ReadArrayHeader() != 4 || (GuestRequestKind)reader.ReadInt32() != GuestRequestKind.InvokeDelegate)
            {
                return null;
            }
            var key = reader.ReadUInt64();
            if (knownKeys.Contains(key) || reader.TryReadNil() || MethodDescriptor.Read(ref reader) is not { } descriptor || descriptor.Key != key)
            {
                // Not the method the request names: ignore it.
                return null;
            }
            var fields = new List<string>();
            if (reader.NextMessagePackType == MessagePackType.Map)
            {
                var count = reader.ReadMapHeader();
                for (var i = 0; i < count; i++)
                {
                    fields.Add(reader.ReadString() ?? "");
                    reader.Skip();
                }
            }
            return new MethodToPrepare(descriptor, fields);
        }
        catch (Exception e) when (MalformedMessagePack.Is(e))
        {
            return null;
        }
    }

    /// <summary>Encodes an invocation of a method by its key alone, with no target (the image builder uses it to warm the refusal path).</summary>
    public static byte[] InvokeDelegateByKeyOnly(ulong key)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(4);
        writer.Write((int)GuestRequestKind.InvokeDelegate);
        writer.Write(key);
        writer.WriteNil();
        writer.WriteNil();
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    /// <summary>True when <paramref name="reply"/> is a success or pending reply (not an exception or a refusal).</summary>
    public static bool IsSuccessOrPending(ReadOnlyMemory<byte> reply)
    {
        try
        {
            var reader = new MessagePackReader(reply);
            return reader.ReadArrayHeader() == 2 && (ReplyStatus)reader.ReadInt32() is ReplyStatus.Success or ReplyStatus.Pending;
        }
        catch (Exception e) when (MalformedMessagePack.Is(e))
        {
            return false;
        }
    }
}

/// <summary>A method for a template sandbox to prepare, and the closure fields its calls carry (whose types it may prepare).</summary>
/// <param name="Descriptor">The method.</param>
/// <param name="CapturedFields">The names of the closure's fields that calls send.</param>
internal sealed record MethodToPrepare(MethodDescriptor Descriptor, IReadOnlyList<string> CapturedFields);
