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
        // Read straight from the channel's buffer: the value is deserialized before anything else can use it.
        var reply = HostConnection.Exchange(Encode(HostRequestKind.InvokeCallback, name, args, operation: null));
        return MessagePackSerializer.Deserialize<T>(ReplyValue(name, reply), IsolatedSerializer.Options);
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
        var reply = HostConnection.Exchange(Encode(HostRequestKind.InvokeCallback, name, args, operation: null));
        return ReadReply(name, reply);
    }

    private static Task<byte[]> CallAsync(string name, object?[] args)
    {
        var (operation, completion) = PendingOperations.AwaitHost();
        var reply = HostConnection.Exchange(Encode(HostRequestKind.InvokeCallbackAsync, name, args, operation));
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

    // One request is encoded at a time (the guest is single-threaded and Exchange copies it out), so the
    // buffer is reused; an argument whose serialization calls the host again gets a buffer of its own.
    private static readonly ArrayBufferWriter<byte> s_request = new(256);
    private static bool s_requestInUse;

    private static ReadOnlySpan<byte> Encode(HostRequestKind kind, string name, object?[] args, int? operation)
    {
        ArgumentNullException.ThrowIfNull(name);
        EnsureInSandbox();
        var shared = !s_requestInUse;
        var output = shared ? s_request : new ArrayBufferWriter<byte>();
        s_requestInUse = true;
        try
        {
            output.ResetWrittenCount();
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
            return output.WrittenSpan;
        }
        finally
        {
            if (shared)
            {
                s_requestInUse = false;
            }
        }
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
                MessagePackSerializer.Serialize(arg.GetType(), ref writer, arg, IsolatedSerializer.Options);
                break;
        }
    }

    /// <summary>Reads <c>[true, value]</c> or <c>[false, message]</c>; returns a copy of the value's bytes.</summary>
    private static byte[] ReadReply(string name, ReadOnlyMemory<byte> reply) => ReplyValue(name, reply).ToArray();

    /// <summary>Reads <c>[true, value]</c> or <c>[false, message]</c>; returns the value's bytes, within <paramref name="reply"/>.</summary>
    private static ReadOnlyMemory<byte> ReplyValue(string name, ReadOnlyMemory<byte> reply)
    {
        var reader = new MessagePackReader(reply);
        if (reader.ReadArrayHeader() != 2)
        {
            throw new HostCallbackException($"The host sent a malformed reply to the call of '{name}'.");
        }
        if (!reader.ReadBoolean())
        {
            throw new HostCallbackException(reader.ReadString() ?? $"The call to host callback '{name}' failed.");
        }
        var start = (int)reader.Consumed;
        reader.Skip();
        return reply[start..(int)reader.Consumed];
    }

    private static void EnsureInSandbox()
    {
        if (!IsInSandbox)
        {
            throw new InvalidOperationException("DotNetIsolatorHost calls the host of a sandbox: it works only inside an IsolateGrains sandbox.");
        }
    }
}
