using System.Buffers;
using IsolateGrains.Guest;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains;

/// <summary>
/// The guest's view of its host: code running inside a sandbox calls the callbacks the host registered
/// (<c>IsolatedRuntime.RegisterCallback</c>) by name. Arguments and results are copied with
/// MessagePack, as everything that crosses the boundary is.
/// </summary>
public static class DotNetIsolatorHost
{
    /// <summary>True when this code runs inside an IsolateGrains sandbox (the Mono WebAssembly runtime).</summary>
    public static bool IsInSandbox => OperatingSystem.IsBrowser();

    /// <summary>Calls the host callback <paramref name="name"/> and waits for it.</summary>
    /// <exception cref="HostCallbackException">No such callback, or it failed on the host.</exception>
    public static void Invoke(string name, params object?[] args) => Call(name, args);

    /// <summary>Calls the host callback <paramref name="name"/> and returns a copy of its result.</summary>
    /// <exception cref="HostCallbackException">No such callback, or it failed on the host.</exception>
    public static T Invoke<T>(string name, params object?[] args)
    {
        // Primitive results are read straight from the channel's buffer (no user code runs while they are read).
        var reply = Send(HostRequestKind.InvokeCallback, name, args, operation: null);
        if (IsPlainSuccess(reply.Span) && PrimitiveValueReader.TryRead<T>(reply.Span[2..], out var value))
        {
            return value;
        }
        // The serializer may run the user's code (a setter, a constructor, an assembly load) that calls the host,
        // which reuses the channel's buffer the reply is in: it reads from a copy.
        return MessagePackSerializer.Deserialize<T>(ReplyValue(name, reply).ToArray(), IsolatedSerializer.Options);
    }

    /// <summary>Calls a host callback that takes and returns byte arrays, with no object serialization.</summary>
    /// <exception cref="HostCallbackException">No such callback, or it failed on the host.</exception>
    public static byte[] InvokeRaw(string name, params byte[][] args)
    {
        var result = Call(name, args.Cast<object?>().ToArray());
        return MessagePackSerializer.Deserialize<byte[]>(result, IsolatedSerializer.Options) ?? [];
    }

    /// <summary>
    /// Calls an asynchronous host callback (one returning a <c>Task</c>, an Orleans call say) without
    /// blocking: the sandbox goes on with other work and this task completes when the host answers.
    /// </summary>
    public static async Task InvokeAsync(string name, params object?[] args) => await CallAsync(name, args);

    /// <summary>Calls an asynchronous host callback and returns a copy of its result when it completes.</summary>
    public static async Task<T> InvokeAsync<T>(string name, params object?[] args)
    {
        var result = await CallAsync(name, args);
        return MessagePackSerializer.Deserialize<T>(result, IsolatedSerializer.Options);
    }

    private static byte[] Call(string name, object?[] args)
    {
        var reply = Send(HostRequestKind.InvokeCallback, name, args, operation: null);
        return ReadReply(name, reply);
    }

    private static Task<byte[]> CallAsync(string name, object?[] args)
    {
        var (operation, completion) = PendingOperations.AwaitHost();
        var reply = Send(HostRequestKind.InvokeCallbackAsync, name, args, operation);
        try
        {
            ReadReply(name, reply);
        }
        catch
        {
            PendingOperations.Abandon(operation);
            throw;
        }
        return completion;
    }

    /// <summary>
    /// Sends a callback request and returns the host's reply (valid until the next exchange). The request is
    /// written straight into the channel's buffer; one whose arguments' serialization calls the host again is
    /// written apart, so that the inner call does not overwrite it.
    /// </summary>
    private static ReadOnlyMemory<byte> Send(HostRequestKind kind, string name, object?[] args, int? operation)
    {
        ArgumentNullException.ThrowIfNull(name);
        EnsureInSandbox();
        args ??= [];
        var utf8Name = Utf8Name(name);
        if (HostConnection.BeginRequest() is { } channel)
        {
            try
            {
                // Primitive arguments only (no user code runs while writing them) are encoded without MessagePackWriter.
                var size = CallbackRequestEncoder.MeasureOrNegative(utf8Name, args);
                if (size >= 0)
                {
                    channel.Advance(CallbackRequestEncoder.Write(channel.GetSpan(size), (int)kind, utf8Name, args, operation));
                }
                else
                {
                    Write(channel, kind, name, args, operation);
                }
            }
            catch
            {
                HostConnection.AbandonWrittenRequest();
                throw;
            }
            return HostConnection.SendWrittenRequest();
        }
        var apart = new ArrayBufferWriter<byte>();
        Write(apart, kind, name, args, operation);
        return HostConnection.Exchange(apart.WrittenSpan);
    }

    private static void Write(IBufferWriter<byte> output, HostRequestKind kind, string name, object?[] args, int? operation)
    {
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(operation is null ? 3 : 4);
        writer.Write((int)kind);
        writer.WriteString(Utf8Name(name));
        writer.WriteArrayHeader(args?.Length ?? 0);
        foreach (var arg in args ?? [])
        {
            WriteArgument(ref writer, arg);
        }
        if (operation is { } id)
        {
            writer.Write(id);
        }
        writer.Flush();
    }

    private static string? s_lastName;
    private static byte[] s_lastNameUtf8 = [];

    /// <summary>
    /// The callback name in UTF-8. Code calls the same callback in a loop with the same string (a literal, so
    /// the same reference): the last name's bytes are kept instead of encoding it on every call.
    /// </summary>
    private static ReadOnlySpan<byte> Utf8Name(string name)
    {
        if (!ReferenceEquals(name, s_lastName))
        {
            s_lastNameUtf8 = System.Text.Encoding.UTF8.GetBytes(name);
            s_lastName = name;
        }
        return s_lastNameUtf8;
    }

    /// <summary>Writes one argument as its run-time type; the common primitives directly (the same bytes their formatters write).</summary>
    private static void WriteArgument(ref MessagePackWriter writer, object? arg)
    {
        switch (arg)
        {
            case null:
                writer.WriteNil();
                break;
            case int value:
                writer.Write(value);
                break;
            case string value:
                writer.Write(value);
                break;
            case long value:
                writer.Write(value);
                break;
            case bool value:
                writer.Write(value);
                break;
            case double value:
                writer.Write(value);
                break;
            default:
                TypeCodec.For(arg.GetType()).Serialize(ref writer, arg);
                break;
        }
    }

    /// <summary>Reads <c>[true, value]</c> or <c>[false, message]</c>; returns a copy of the value's bytes.</summary>
    private static byte[] ReadReply(string name, ReadOnlyMemory<byte> reply) => ReplyValue(name, reply).ToArray();

    /// <summary>Reads <c>[true, value]</c> or <c>[false, message]</c>; returns the value's bytes, within <paramref name="reply"/>.</summary>
    private static ReadOnlyMemory<byte> ReplyValue(string name, ReadOnlyMemory<byte> reply)
    {
        var reader = OpenReply(name, reply);
        // The reader may cover only the end of the reply: positions are counted back from the end.
        var start = reply.Length - (int)(reader.Sequence.Length - reader.Consumed);
        reader.Skip();
        return reply[start..(reply.Length - (int)(reader.Sequence.Length - reader.Consumed))];
    }

    /// <summary>True for <c>[true, value]</c> with the two-byte head every success has: the value starts at offset 2, no need to decode the head.</summary>
    private static bool IsPlainSuccess(ReadOnlySpan<byte> reply) => reply.Length > 2 && reply[0] == 0x92 && reply[1] == MessagePackCode.True;

    /// <summary>Reads the head of <c>[true, value]</c> (or throws for <c>[false, message]</c>); the reader is left at the value.</summary>
    private static MessagePackReader OpenReply(string name, ReadOnlyMemory<byte> reply)
    {
        if (IsPlainSuccess(reply.Span))
        {
            return new MessagePackReader(reply[2..]);
        }
        var reader = new MessagePackReader(reply);
        if (reader.ReadArrayHeader() != 2)
        {
            throw new HostCallbackException($"The host sent a malformed reply to the call of '{name}'.");
        }
        if (!reader.ReadBoolean())
        {
            throw new HostCallbackException(reader.ReadString() ?? $"The call to host callback '{name}' failed.");
        }
        return reader;
    }

    private static void EnsureInSandbox()
    {
        if (!IsInSandbox)
        {
            throw new InvalidOperationException("DotNetIsolatorHost calls the host of a sandbox: it works only inside an IsolateGrains sandbox.");
        }
    }
}
