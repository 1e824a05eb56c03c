using System.Runtime.CompilerServices;
using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// Reads the primitives most captured values and arguments are (int, long, bool, double, string) with the reader's own
/// methods: what their formatters do, without the resolver lookup and serializer entry that cost the guest's
/// interpreter more than the value itself. Errors are wrapped as the serializer wraps them ("Failed to deserialize T
/// value", the cause inside), so callers see the same exceptions either way. The same five types are read from bytes
/// by <c>Guest.PrimitiveValueReader</c> and written by <c>Guest.PrimitiveValueWriter</c>.
/// </summary>
internal static class PrimitiveFormats
{
    /// <summary>True for the types <see cref="Read{T}"/> reads.</summary>
    public static bool Handles<T>() =>
        typeof(T) == typeof(int) || typeof(T) == typeof(long) || typeof(T) == typeof(bool) || typeof(T) == typeof(double) || typeof(T) == typeof(string);

    /// <summary>Reads a <typeparamref name="T"/>, which must be one of the types <see cref="Handles{T}"/> accepts.</summary>
    public static T Read<T>(ref MessagePackReader reader)
    {
        try
        {
            if (typeof(T) == typeof(int))
            {
                var value = reader.ReadInt32();
                return Unsafe.As<int, T>(ref value);
            }
            if (typeof(T) == typeof(long))
            {
                var value = reader.ReadInt64();
                return Unsafe.As<long, T>(ref value);
            }
            if (typeof(T) == typeof(bool))
            {
                var value = reader.ReadBoolean();
                return Unsafe.As<bool, T>(ref value);
            }
            if (typeof(T) == typeof(double))
            {
                var value = reader.ReadDouble();
                return Unsafe.As<double, T>(ref value);
            }
            if (typeof(T) == typeof(string))
            {
                var text = reader.ReadString();
                return Unsafe.As<string?, T>(ref text);
            }
        }
        catch (Exception e)
        {
            throw new MessagePackSerializationException($"Failed to deserialize {typeof(T).FullName} value.", e);
        }
        throw new NotSupportedException($"{typeof(T).FullName} is not one of the primitives read here (see Handles).");
    }
}
