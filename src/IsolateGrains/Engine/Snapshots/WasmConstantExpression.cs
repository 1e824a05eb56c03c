using System.Buffers.Binary;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// Constant expressions: the initializers of globals and the offsets of active data and element segments.
/// The rewriter never evaluates them in general; it only needs to find where one ends, to recognize a plain
/// constant offset, and to write a constant initializer.
/// </summary>
internal static class WasmConstantExpression
{
    /// <summary>The <c>end</c> opcode that terminates every expression.</summary>
    public const byte End = 0x0B;

    /// <summary>The <c>i32.const</c> opcode.</summary>
    public const byte I32Const = 0x41;

    /// <summary>The <c>i64.const</c> opcode.</summary>
    public const byte I64Const = 0x42;

    /// <summary>The <c>f32.const</c> opcode.</summary>
    public const byte F32Const = 0x43;

    /// <summary>The <c>f64.const</c> opcode.</summary>
    public const byte F64Const = 0x44;

    /// <summary>
    /// Reads past one constant expression, <c>end</c> included. Knows every instruction allowed in constant
    /// expressions by the core specification and the extended-const, reference-types and SIMD proposals; an
    /// instruction it does not know (e.g. from the GC proposal) is reported rather than misparsed.
    /// </summary>
    /// <param name="reader">A reader positioned at the expression's first instruction.</param>
    public static void Skip(ref WasmBinaryReader reader)
    {
        while (true)
        {
            var at = reader.AbsolutePosition;
            var opcode = reader.ReadByte();
            switch (opcode)
            {
                case End:
                    return;
                case I32Const:
                    reader.ReadVarInt32();
                    break;
                case I64Const:
                    reader.ReadVarInt64();
                    break;
                case F32Const:
                    reader.Skip(4);
                    break;
                case F64Const:
                    reader.Skip(8);
                    break;
                case 0x23: // global.get
                case 0xD2: // ref.func
                    reader.ReadVarUInt32();
                    break;
                case 0xD0: // ref.null heaptype
                    reader.ReadVarInt33();
                    break;
                case 0x6A or 0x6B or 0x6C: // i32.add, i32.sub, i32.mul (extended-const)
                case 0x7C or 0x7D or 0x7E: // i64.add, i64.sub, i64.mul (extended-const)
                    break;
                case 0xFD: // SIMD prefix: only v128.const (12) is constant
                    var simd = reader.ReadVarUInt32();
                    if (simd != 12)
                    {
                        throw new NotSupportedException(
                            $"WebAssembly instruction 0xFD {simd} at offset {at} is not supported in a constant expression.");
                    }

                    reader.Skip(16);
                    break;
                default:
                    throw new NotSupportedException(
                        $"WebAssembly opcode 0x{opcode:X2} at offset {at} is not supported in a constant expression " +
                        "(only numeric constants, global.get, ref.null, ref.func, v128.const and extended-const arithmetic are).");
            }
        }
    }

    /// <summary>
    /// Recognizes an expression that is a single <c>i32.const</c> or <c>i64.const</c>, the usual form of a
    /// data segment offset. An <c>i32.const</c> offset is an unsigned address, so negative immediates are
    /// returned as their unsigned 32-bit value.
    /// </summary>
    /// <param name="expression">The expression bytes, <c>end</c> included.</param>
    /// <param name="value">The constant.</param>
    /// <returns>Whether the expression is such a constant.</returns>
    public static bool TryReadConstantOffset(ReadOnlySpan<byte> expression, out long value)
    {
        value = 0;
        if (expression.Length < 3 || expression[^1] != End)
        {
            return false;
        }

        var reader = new WasmBinaryReader(expression);
        try
        {
            var opcode = reader.ReadByte();
            if (opcode == I32Const)
            {
                value = (uint)reader.ReadVarInt32();
            }
            else if (opcode == I64Const)
            {
                value = reader.ReadVarInt64();
            }
            else
            {
                return false;
            }
        }
        catch (InvalidDataException)
        {
            return false;
        }

        return reader.Remaining == 1;
    }

    /// <summary>Writes a constant expression (<c>T.const</c> followed by <c>end</c>) holding a value of the given type.</summary>
    /// <param name="writer">The destination.</param>
    /// <param name="type">The value type.</param>
    /// <param name="bits">
    /// The value: for i32 its low 32 bits (sign- or zero-extended both work), for i64 the value itself, for f32 the
    /// IEEE 754 bits in the low 32 bits, for f64 the IEEE 754 bits. Raw bits, so NaN payloads survive.
    /// </param>
    public static void WriteConstant(WasmBinaryWriter writer, WasmValueType type, long bits)
    {
        switch (type)
        {
            case WasmValueType.I32:
                writer.WriteByte(I32Const);
                writer.WriteVarInt32(unchecked((int)bits));
                break;
            case WasmValueType.I64:
                writer.WriteByte(I64Const);
                writer.WriteVarInt64(bits);
                break;
            case WasmValueType.F32:
                writer.WriteByte(F32Const);
                Span<byte> f32 = stackalloc byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(f32, unchecked((uint)bits));
                writer.WriteBytes(f32);
                break;
            case WasmValueType.F64:
                writer.WriteByte(F64Const);
                Span<byte> f64 = stackalloc byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(f64, bits);
                writer.WriteBytes(f64);
                break;
            default:
                throw new NotSupportedException($"Cannot write a constant of WebAssembly value type {type}.");
        }

        writer.WriteByte(End);
    }
}
