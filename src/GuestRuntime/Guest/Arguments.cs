using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Reads the arguments the host sends for constructors and methods. Each is nil, <c>[0, typeName, value]</c>
/// (a copy, deserialized as the type the host named) or <c>[1, handle]</c> (an object already in the
/// sandbox, passed by reference: identity kept).
/// </summary>
internal static class Arguments
{
    /// <summary>Copy of a value.</summary>
    public const int ByValue = 0;

    /// <summary>Reference to an object the sandbox holds.</summary>
    public const int ByHandle = 1;

    /// <summary>Reads an argument array: the values and the types that pick overloads (null for null).</summary>
    public static (object?[] Values, Type?[] Types) Read(ref MessagePackReader reader)
    {
        var count = reader.ReadArrayHeader();
        var values = new object?[count];
        var types = new Type?[count];
        for (var i = 0; i < count; i++)
        {
            if (reader.TryReadNil())
            {
                continue;
            }
            if (reader.ReadArrayHeader() < 2)
            {
                throw new MessagePackSerializationException("Malformed argument.");
            }
            var kind = reader.ReadInt32();
            if (kind == ByHandle)
            {
                values[i] = GuestObjects.Get(reader.ReadInt32());
                types[i] = values[i]!.GetType();
                continue;
            }
            var type = GuestTypes.ReadQualifiedType(ref reader);
            values[i] = TypeCodec.For(type).Deserialize(ref reader);
            types[i] = values[i]?.GetType() ?? type;
        }
        return (values, types);
    }

    /// <summary>Converts numbers to the parameter types they are passed to (an int to a long parameter, say).</summary>
    public static void FitTo(System.Reflection.ParameterInfo[] parameters, object?[] values)
    {
        for (var i = 0; i < values.Length && i < parameters.Length; i++)
        {
            if (values[i]?.GetType() == parameters[i].ParameterType)
            {
                continue;
            }
            var target = Nullable.GetUnderlyingType(parameters[i].ParameterType) ?? parameters[i].ParameterType;
            if (values[i] is { } value && !target.IsInstanceOfType(value) && value is IConvertible && (target.IsPrimitive || target == typeof(decimal) || target.IsEnum))
            {
                values[i] = target.IsEnum ? Enum.ToObject(target, value) : Convert.ChangeType(value, target, System.Globalization.CultureInfo.InvariantCulture);
            }
        }
    }
}
