using System.Buffers;
using System.Reflection;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Isolated objects: creating them (by constructor, or as a copy of a host value), resolving and
/// invoking their methods, reading them back, and releasing them. Objects stay in the sandbox; the
/// host holds handles.
/// </summary>
internal static class ObjectRequests
{
    private static readonly List<MethodPlan> s_methods = [];

    /// <summary><c>[CreateObject, assembly, typeName, args]</c> → <c>[handle, typeName]</c>.</summary>
    public static void Create(ref MessagePackReader reader, ArrayBufferWriter<byte> output)
    {
        var type = GuestTypes.FindType(reader.ReadString() ?? "", reader.ReadString() ?? "");
        var (values, types) = Arguments.Read(ref reader);
        object instance;
        var constructor = values.Length == 0 && type.IsValueType ? null : GuestTypes.FindConstructor(type, types);
        if (constructor is not null)
        {
            Arguments.FitTo(constructor.GetParameters(), values);
        }
        try
        {
            instance = constructor is null
                ? Activator.CreateInstance(type)!
                : constructor.Invoke(BindingFlags.DoNotWrapExceptions, binder: null, values, culture: null);
        }
        catch (Exception e)
        {
            // The constructor is the user's code: what it throws is a guest exception, whatever its type.
            output.ResetWrittenCount();
            Replies.WriteException(output, e is TargetInvocationException { InnerException: { } inner } ? inner : e);
            return;
        }
        WriteHandle(output, instance);
    }

    /// <summary><c>[CopyObject, typeName, value]</c> → <c>[handle, typeName]</c>.</summary>
    public static void Copy(ref MessagePackReader reader, ArrayBufferWriter<byte> output)
    {
        var type = GuestTypes.FindQualifiedType(reader.ReadString() ?? "");
        object? value;
        try
        {
            value = TypeCodec.For(type).Deserialize(ref reader);
        }
        catch (MessagePackSerializationException e) when (e.InnerException is { } inner && !MalformedMessagePack.IsOnlyTheSerializers(e))
        {
            // The type's own code refused the value: report its exception as a guest exception, not the serializer's wrapper.
            Replies.WriteException(output, inner);
            return;
        }
        if (value is null)
        {
            throw new ArgumentNullException(nameof(value), "A null value cannot be held as an isolated object.");
        }
        WriteHandle(output, value);
    }

    /// <summary><c>[ResolveMethod, assembly, typeName, name, parameterCount]</c> → <c>[id, parameterCount, isStatic]</c>.</summary>
    public static void Resolve(ref MessagePackReader reader, ArrayBufferWriter<byte> output)
    {
        var type = GuestTypes.FindType(reader.ReadString() ?? "", reader.ReadString() ?? "");
        var plan = GuestTypes.FindMethod(type, reader.ReadString() ?? "", reader.ReadInt32(), argumentTypes: null);
        s_methods.Add(plan);
        var writer = new MessagePackWriter(output);
        Replies.BeginSuccess(ref writer);
        writer.WriteArrayHeader(3);
        writer.Write(s_methods.Count - 1);
        writer.Write(plan.Parameters.Length);
        writer.Write(plan.Method.IsStatic);
        writer.Flush();
    }

    /// <summary><c>[InvokeMethod, target|nil, methodId | [qualifiedType|nil, name], args, resultMode]</c>.</summary>
    public static void Invoke(ref MessagePackReader reader, ArrayBufferWriter<byte> output)
    {
        var target = reader.TryReadNil() ? null : GuestObjects.Get(reader.ReadInt32());
        MethodPlan? plan = null;
        Type? declaringType = null;
        string? name = null;
        ReadOnlySpan<byte> utf8Name = default;
        if (reader.NextMessagePackType == MessagePackType.Integer)
        {
            var id = reader.ReadInt32();
            plan = id >= 0 && id < s_methods.Count ? s_methods[id] : throw new ResolutionException($"Method id {id} is not known in this sandbox.");
        }
        else
        {
            reader.ReadArrayHeader();
            declaringType = reader.TryReadNil() ? target?.GetType() : GuestTypes.FindQualifiedType(reader.ReadString() ?? "");
            // The name's bytes (a slice of the request, valid for this call) when they are contiguous, as they are.
            if (reader.NextMessagePackType != MessagePackType.String || !reader.TryReadStringSpan(out utf8Name))
            {
                name = reader.ReadString() ?? "";
            }
        }
        var (values, types) = Arguments.Read(ref reader);
        var mode = (ResultMode)reader.ReadInt32();

        if (plan is null)
        {
            if (declaringType is null)
            {
                throw new ResolutionException($"No type was given to find method '{name ?? System.Text.Encoding.UTF8.GetString(utf8Name)}' on.");
            }
            plan = name is null
                ? GuestTypes.FindMethod(declaringType, utf8Name, values.Length, types)
                : GuestTypes.FindMethod(declaringType, name, values.Length, types);
        }
        var method = plan.Method;
        if (plan.Parameters.Length != values.Length)
        {
            throw new ResolutionException($"Method '{method.DeclaringType?.FullName}.{method.Name}' takes {plan.Parameters.Length} parameter(s), not {values.Length}.");
        }
        if (!method.IsStatic)
        {
            if (target is null)
            {
                throw new ResolutionException($"Method '{method.DeclaringType?.FullName}.{method.Name}' is an instance method: a target object is needed.");
            }
            if (!method.DeclaringType!.IsInstanceOfType(target))
            {
                throw new ResolutionException($"Method '{method.DeclaringType.FullName}.{method.Name}' cannot be called on an object of type '{target.GetType().FullName}'.");
            }
        }
        Arguments.FitTo(plan.Parameters, values);

        object? result;
        try
        {
            result = plan.Invoke(target, values);
        }
        catch (Exception e)
        {
            output.ResetWrittenCount();
            Replies.WriteException(output, e);
            return;
        }
        ResultWriter.Write(output, result, method.ReturnType, mode, plan.ReturnsTaskLike);
    }

    /// <summary><c>[GetObjectValue, handle]</c> → the object, serialized as its own type.</summary>
    public static void GetValue(ref MessagePackReader reader, ArrayBufferWriter<byte> output)
    {
        var value = GuestObjects.Get(reader.ReadInt32());
        var writer = new MessagePackWriter(output);
        Replies.BeginSuccess(ref writer);
        TypeCodec.For(value.GetType()).Serialize(ref writer, value);
        writer.Flush();
    }

    /// <summary><c>[ReleaseObjects, [handles]]</c>.</summary>
    public static void Release(ref MessagePackReader reader, ArrayBufferWriter<byte> output)
    {
        var count = reader.ReadArrayHeader();
        for (var i = 0; i < count; i++)
        {
            GuestObjects.Release(reader.ReadInt32());
        }
        Replies.WriteEmptySuccess(output);
    }

    private static void WriteHandle(ArrayBufferWriter<byte> output, object instance)
    {
        var writer = new MessagePackWriter(output);
        Replies.BeginSuccess(ref writer);
        writer.WriteArrayHeader(3);
        writer.Write(GuestObjects.Add(instance));
        writer.Write(instance.GetType().FullName);
        writer.Write(instance.GetType().Assembly.GetName().Name);
        writer.Flush();
    }
}
