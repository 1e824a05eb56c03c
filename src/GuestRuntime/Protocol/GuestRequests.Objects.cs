using System.Buffers;
using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>Encoders for the isolated-object requests (the guest side is <c>IsolateGrains.Guest.ObjectRequests</c>).</summary>
internal static partial class GuestRequests
{
    /// <summary><c>[CreateObject, assembly, typeName, args]</c>.</summary>
    public static byte[] CreateObject(string assemblyName, string typeName, IReadOnlyList<object?> args, Func<object, int?> handleOf) =>
        Encode(GuestRequestKind.CreateObject, (ref MessagePackWriter writer) =>
        {
            writer.Write(assemblyName);
            writer.Write(typeName);
            WriteArguments(ref writer, args, handleOf);
        }, 4);

    /// <summary><c>[CopyObject, typeName, value]</c>.</summary>
    public static byte[] CopyObject(Type type, object value) =>
        Encode(GuestRequestKind.CopyObject, (ref MessagePackWriter writer) =>
        {
            writer.Write(type.AssemblyQualifiedName);
            MessagePackSerializer.Serialize(type, ref writer, value, IsolatedSerializer.Options);
        }, 3);

    /// <summary><c>[ResolveMethod, assembly, typeName, name, parameterCount]</c>.</summary>
    public static byte[] ResolveMethod(string assemblyName, string typeName, string methodName, int parameterCount) =>
        Encode(GuestRequestKind.ResolveMethod, (ref MessagePackWriter writer) =>
        {
            writer.Write(assemblyName);
            writer.Write(typeName);
            writer.Write(methodName);
            writer.Write(parameterCount);
        }, 5);

    /// <summary><c>[InvokeMethod, target|nil, methodId | [nil, name], args, resultMode]</c>.</summary>
    public static byte[] InvokeMethod(int? target, int? methodId, string? methodName, IReadOnlyList<object?> args, ResultMode mode, Func<object, int?> handleOf) =>
        Encode(GuestRequestKind.InvokeMethod, (ref MessagePackWriter writer) =>
        {
            if (target is { } handle)
            {
                writer.Write(handle);
            }
            else
            {
                writer.WriteNil();
            }
            if (methodId is { } id)
            {
                writer.Write(id);
            }
            else
            {
                writer.WriteArrayHeader(2);
                writer.WriteNil();
                writer.Write(methodName);
            }
            WriteArguments(ref writer, args, handleOf);
            writer.Write((int)mode);
        }, 5);

    /// <summary><c>[GetObjectValue, handle]</c>.</summary>
    public static byte[] GetObjectValue(int handle) =>
        Encode(GuestRequestKind.GetObjectValue, (ref MessagePackWriter writer) => writer.Write(handle), 2);

    /// <summary><c>[ReleaseObjects, [handles]]</c>.</summary>
    public static byte[] ReleaseObjects(IReadOnlyList<int> handles) =>
        Encode(GuestRequestKind.ReleaseObjects, (ref MessagePackWriter writer) =>
        {
            writer.WriteArrayHeader(handles.Count);
            foreach (var handle in handles)
            {
                writer.Write(handle);
            }
        }, 2);

    /// <summary><c>[CompleteOperation, id, true, value]</c> or <c>[CompleteOperation, id, false, message]</c>.</summary>
    public static byte[] CompleteOperation(int operation, bool succeeded, ReadOnlySpan<byte> value, string? message)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(4);
        writer.Write((int)GuestRequestKind.CompleteOperation);
        writer.Write(operation);
        writer.Write(succeeded);
        if (succeeded)
        {
            writer.Write(value);
        }
        else
        {
            writer.Write(message);
        }
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    // Weak keys: a type of a collectible load context is not kept alive by having been an argument.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Type, string> s_argumentTypeNames = new();

    /// <summary>
    /// How an argument's type is named to the guest: the core library's types by their full name (the guest has its own
    /// build of that library, which Type.GetType searches for a name without an assembly), others assembly-qualified.
    /// Short names are cheaper for the interpreted guest to read and match; computed once per type (the host's
    /// AssemblyQualifiedName builds a new string every time).
    /// </summary>
    private static string ArgumentTypeName(Type type) => s_argumentTypeNames.GetValue(type, static t =>
        t.Assembly == typeof(object).Assembly && !t.IsGenericType && t.FullName is { } fullName ? fullName : t.AssemblyQualifiedName!);

    /// <summary>
    /// Writes arguments: nil, <c>[0, typeName, value]</c> (a copy, as its run-time type) or
    /// <c>[1, handle]</c> for an object that stands for one in the sandbox (passed by reference; <paramref name="handleOf"/>
    /// recognizes those and checks that they belong to the sandbox the request goes to).
    /// </summary>
    private static void WriteArguments(ref MessagePackWriter writer, IReadOnlyList<object?> args, Func<object, int?> handleOf)
    {
        writer.WriteArrayHeader(args.Count);
        foreach (var arg in args)
        {
            switch (arg)
            {
                case null:
                    writer.WriteNil();
                    break;
                case not null when handleOf(arg) is { } handle:
                    writer.WriteArrayHeader(2);
                    writer.Write(1);
                    writer.Write(handle);
                    break;
                default:
                    var type = arg.GetType();
                    writer.WriteArrayHeader(3);
                    writer.Write(0);
                    writer.Write(ArgumentTypeName(type));
                    try
                    {
                        MessagePackSerializer.Serialize(type, ref writer, arg, IsolatedSerializer.Options);
                    }
                    catch (MessagePackSerializationException e)
                    {
                        throw new IsolatedException($"An argument of type {type.FullName} could not be serialized for the sandbox: {e.InnerException?.Message ?? e.Message}", e);
                    }
                    break;
            }
        }
    }

    private delegate void BodyWriter(ref MessagePackWriter writer);

    private static byte[] Encode(GuestRequestKind kind, BodyWriter body, int elements)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(elements);
        writer.Write((int)kind);
        body(ref writer);
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }
}
