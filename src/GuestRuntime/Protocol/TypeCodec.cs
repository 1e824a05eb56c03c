using System.Collections.Concurrent;
using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// Reads and writes values of one run-time type, known only as a <see cref="Type"/>, through that type's
/// formatter. It stands in for MessagePack's non-generic <c>Serialize(Type, …)</c>/<c>Deserialize(Type, …)</c>,
/// which build a compiled expression per type: in the guest's interpreter, expression trees are themselves
/// interpreted, so the first use of each type cost milliseconds and every later call several times what
/// the generic API does. Errors keep their shape (a wrapper naming the type, with the cause inside), so
/// callers can tell the type's own exceptions from malformed data as before.
/// </summary>
internal abstract class TypeCodec
{
    private static readonly ConcurrentDictionary<Type, TypeCodec> s_codecs = new();

    /// <summary>The codec for <paramref name="type"/> (cached).</summary>
    public static TypeCodec For(Type type) =>
        s_codecs.TryGetValue(type, out var codec) ? codec : s_codecs.GetOrAdd(type, static t => Create(t));

    /// <summary>Reads a value of the type (boxed).</summary>
    public abstract object? Deserialize(ref MessagePackReader reader);

    /// <summary>Finds the type's formatter now (it is otherwise found on first use); throws if it has none.</summary>
    public abstract void Prepare();

    /// <summary>Writes <paramref name="value"/>, which must be of the type (or null).</summary>
    public abstract void Serialize(ref MessagePackWriter writer, object? value);

    private static TypeCodec Create(Type type)
    {
        if (type.IsByRef || type.IsPointer || type.IsByRefLike || type.ContainsGenericParameters || type == typeof(void))
        {
            throw new MessagePackSerializationException($"Values of type {type.FullName} cannot be serialized.");
        }
        return (TypeCodec)Activator.CreateInstance(typeof(Typed<>).MakeGenericType(type))!;
    }

    private sealed class Typed<T> : TypeCodec
    {
        // MessagePack's generic API: it keeps each type's formatter in a static cache and wraps errors the way its
        // non-generic API does ("Failed to deserialize T value", the cause inside).
        public override void Prepare() => IsolatedSerializer.Options.Resolver.GetFormatterWithVerify<T>();

        private static readonly bool s_primitive = PrimitiveFormats.Handles<T>();

        public override object? Deserialize(ref MessagePackReader reader) => s_primitive
            ? PrimitiveFormats.Read<T>(ref reader)
            : MessagePackSerializer.Deserialize<T>(ref reader, IsolatedSerializer.Options);

        public override void Serialize(ref MessagePackWriter writer, object? value) =>
            MessagePackSerializer.Serialize(ref writer, (T)value!, IsolatedSerializer.Options);
    }
}
