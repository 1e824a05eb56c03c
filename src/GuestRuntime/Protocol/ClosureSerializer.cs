using System.Buffers;
using System.Reflection;
using System.Runtime.CompilerServices;
using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// Serializes a lambda's closure object field by field: a MessagePack map from field name to the
/// field's value serialized as its declared type, with nested closures as nested maps. Only the
/// fields the lambda uses are written (see <see cref="ClosureFields"/>); the guest creates the
/// closure without running a constructor and sets those fields.
/// </summary>
internal static class ClosureSerializer
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

    /// <summary>Writes <paramref name="target"/> (a closure, or any object) for <paramref name="method"/>.</summary>
    public static byte[] Serialize(MethodInfo method, object target)
    {
        var type = target.GetType();
        if (!ClosureFields.IsClosureType(type))
        {
            // A method group on an ordinary object: send the object itself.
            return MessagePackSerializer.Serialize(type, target, IsolatedSerializer.Options);
        }
        var used = ClosureFields.Find(method);
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        WriteClosure(ref writer, target, used);
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Reads an object of <paramref name="type"/> written by <see cref="Serialize"/>.</summary>
    public static object Deserialize(Type type, ReadOnlySequence<byte> bytes)
    {
        if (!ClosureFields.IsClosureType(type))
        {
            return MessagePackSerializer.Deserialize(type, bytes, IsolatedSerializer.Options)
                ?? throw new MessagePackSerializationException($"The target of type {type.FullName} was null.");
        }
        var reader = new MessagePackReader(bytes);
        return ReadClosure(ref reader, type);
    }

    private static void WriteClosure(ref MessagePackWriter writer, object closure, Dictionary<Type, HashSet<FieldInfo>>? used)
    {
        var type = closure.GetType();
        var fields = type.GetFields(InstanceFields)
            .Where(f => used is null || (used.TryGetValue(type, out var set) && set.Any(u => u.Name == f.Name)))
            .ToArray();
        writer.WriteMapHeader(fields.Length);
        foreach (var field in fields)
        {
            writer.Write(field.Name);
            var value = field.GetValue(closure);
            if (ClosureFields.IsClosureType(field.FieldType) && value is not null)
            {
                WriteClosure(ref writer, value, used);
                continue;
            }
            try
            {
                writer.Write(MessagePackSerializer.Serialize(field.FieldType, value, IsolatedSerializer.Options));
            }
            catch (MessagePackSerializationException e)
            {
                var what = field.Name == "<>4__this" ? $"'this' ({field.FieldType.FullName})" : $"'{field.Name}' ({field.FieldType.FullName})";
                throw new MessagePackSerializationException(
                    $"The lambda captures {what}, which cannot be serialized: {e.InnerException?.Message ?? e.Message}. Capture serializable values in locals instead.", e);
            }
        }
    }

    private static object ReadClosure(ref MessagePackReader reader, Type type)
    {
        var closure = RuntimeHelpers.GetUninitializedObject(type);
        var count = reader.ReadMapHeader();
        for (var i = 0; i < count; i++)
        {
            var name = reader.ReadString() ?? "";
            var field = type.GetField(name, InstanceFields)
                ?? throw new MessagePackSerializationException($"The closure {type.FullName} has no field '{name}'.");
            if (ClosureFields.IsClosureType(field.FieldType) && reader.NextMessagePackType == MessagePackType.Map)
            {
                field.SetValue(closure, ReadClosure(ref reader, field.FieldType));
                continue;
            }
            var bytes = reader.ReadBytes() ?? throw new MessagePackSerializationException($"The closure field '{name}' had no value.");
            field.SetValue(closure, MessagePackSerializer.Deserialize(field.FieldType, bytes, IsolatedSerializer.Options));
        }
        return closure;
    }
}
