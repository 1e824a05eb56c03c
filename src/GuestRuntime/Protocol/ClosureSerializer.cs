using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// Serializes a lambda's closure object field by field: a MessagePack map from field name to the
/// field's value serialized as its declared type, with nested closures as nested maps. Only the
/// fields the lambda uses are written (see <see cref="ClosureFields"/>); the guest creates the
/// closure without running a constructor and sets those fields. Plans are cached per method and
/// per closure type, so the reflection happens once.
/// </summary>
internal static class ClosureSerializer
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
    private static readonly ConcurrentDictionary<MethodInfo, Dictionary<Type, FieldInfo[]>?> s_usedFields = new();
    private static readonly ConcurrentDictionary<Type, Dictionary<string, FieldInfo>> s_fieldsByName = new();

    /// <summary>Writes the target of a delegate to <paramref name="method"/> (a closure, or any object for a method group).</summary>
    public static void Serialize(ref MessagePackWriter writer, MethodInfo method, object target)
    {
        var type = target.GetType();
        if (!ClosureFields.IsClosureType(type))
        {
            MessagePackSerializer.Serialize(type, ref writer, target, IsolatedSerializer.Options);
            return;
        }
        var used = s_usedFields.GetOrAdd(method, static m => ClosureFields.Find(m)?.ToDictionary(p => p.Key, p => p.Value.ToArray()));
        WriteClosure(ref writer, target, used);
    }

    /// <summary>Reads an object of <paramref name="type"/> written by <see cref="Serialize"/>.</summary>
    public static object Deserialize(ref MessagePackReader reader, Type type)
    {
        if (!ClosureFields.IsClosureType(type))
        {
            return MessagePackSerializer.Deserialize(type, ref reader, IsolatedSerializer.Options)
                ?? throw new MessagePackSerializationException($"The target of type {type.FullName} was null.");
        }
        return ReadClosure(ref reader, type);
    }

    /// <summary>The names of the fields of closure <paramref name="type"/> that calls of <paramref name="method"/> send (all, when unknown).</summary>
    public static IReadOnlyList<string> UsedFieldNames(MethodInfo method, Type type)
    {
        if (!ClosureFields.IsClosureType(type))
        {
            return [];
        }
        var used = s_usedFields.GetOrAdd(method, static m => ClosureFields.Find(m)?.ToDictionary(p => p.Key, p => p.Value.ToArray()));
        return used is null
            ? [.. type.GetFields(InstanceFields).Select(f => f.Name)]
            : used.TryGetValue(type, out var fields) ? [.. fields.Select(f => f.Name)] : [];
    }

    /// <summary>
    /// Does the first-use work of reading targets of <paramref name="type"/> (its field table, the formatters
    /// of <paramref name="capturedFields"/>) without creating one, so that no user code runs. Only the fields
    /// calls carry are touched: resolving another field's type can fail (a host-only type) and the runtime
    /// would remember that failure against the closure type. Best effort: what cannot be prepared is left
    /// for the first call.
    /// </summary>
    public static void Prepare(Type type, IReadOnlyList<string> capturedFields)
    {
        if (!ClosureFields.IsClosureType(type))
        {
            PrepareFormatter(type);
            return;
        }
        var fields = s_fieldsByName.GetOrAdd(type, static t => t.GetFields(InstanceFields).ToDictionary(f => f.Name, StringComparer.Ordinal));
        foreach (var name in capturedFields)
        {
            if (fields.TryGetValue(name, out var field) && !ClosureFields.IsClosureType(field.FieldType))
            {
                PrepareFormatter(field.FieldType);
            }
        }
    }

    /// <summary>Builds (and caches) the serializer's formatter for <paramref name="type"/>, if it has one.</summary>
    public static void PrepareFormatter(Type type)
    {
        try
        {
            _ = IsolatedSerializer.Options.Resolver.GetFormatterDynamic(type);
        }
        catch (Exception e) when (e is MessagePackSerializationException or TypeInitializationException or NotSupportedException or ArgumentException)
        {
            // Left for the first call, which reports it properly.
        }
    }

    private static void WriteClosure(ref MessagePackWriter writer, object closure, Dictionary<Type, FieldInfo[]>? used)
    {
        var type = closure.GetType();
        var fields = used is null ? type.GetFields(InstanceFields) : used.GetValueOrDefault(type) ?? [];
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
                MessagePackSerializer.Serialize(field.FieldType, ref writer, value, IsolatedSerializer.Options);
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
        var fields = s_fieldsByName.GetOrAdd(type, static t => t.GetFields(InstanceFields).ToDictionary(f => f.Name, StringComparer.Ordinal));
        var count = reader.ReadMapHeader();
        for (var i = 0; i < count; i++)
        {
            var name = reader.ReadString() ?? "";
            if (!fields.TryGetValue(name, out var field))
            {
                throw new MessagePackSerializationException($"The closure {type.FullName} has no field '{name}'.");
            }
            var value = ClosureFields.IsClosureType(field.FieldType) && reader.NextMessagePackType == MessagePackType.Map
                ? ReadClosure(ref reader, field.FieldType)
                : MessagePackSerializer.Deserialize(field.FieldType, ref reader, IsolatedSerializer.Options);
            field.SetValue(closure, value);
        }
        return closure;
    }
}
